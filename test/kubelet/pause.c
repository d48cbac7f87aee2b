/* A stand-in for the Kubernetes pause image (registry.k8s.io/pause), which
 * cannot be pulled here: PID 1 of every pod sandbox. It holds the pod's
 * namespaces, reaps children and exits on SIGINT/SIGTERM, as the real one does. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
  struct sigaction action = {0};
  action.sa_handler = quit;
  sigaction(SIGINT, &action, 0);
  sigaction(SIGTERM, &action, 0);
  action.sa_handler = reap;
  action.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &action, 0);
  for (;;) pause();
}
