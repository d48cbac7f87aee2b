// A real node for the e2e control plane: containerd (CRI) with runc and the CNI
// bridge, a kubelet registered with the e2e kube-apiserver, and the
// kube-controller-manager and kube-scheduler that turn Deployments and Jobs into
// scheduled pods. Everything lives in the control plane's temporary folder;
// pods get addresses on a bridge of our own (BRIDGE_CIDR), where the host side
// (BRIDGE_GATEWAY) is where a pod reaches servers of the test, such as Vault.
//
// Settings this host needs (cgroup v1 only, no CAP_SYS_RESOURCE): kubelet
// failCgroupV1: false, cgroupDriver: cgroupfs, --oom-score-adj=0; containerd's
// restrict_oom_score_adj. Images cannot be pulled: images.sh builds them and
// they are imported before the kubelet starts; image garbage collection is off
// so they are never removed.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { CoreV1Api } from '@kubernetes/client-node'
import { atAbort, BIN, freePort, start, waitFor, Fatal, type ControlPlane, type Process } from '../e2e/harness.ts'

export const BRIDGE = 'vi-e2e0'
export const BRIDGE_GATEWAY = '10.199.0.1'
const BRIDGE_CIDR = '10.199.0.0/24'
export const NODE_NAME = 'e2e-node'

export interface Node {
  containerdSocket: string
  stop(): Promise<void>
}

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function tryRun(command: string, args: string[]): void {
  try {
    run(command, args)
  } catch {
    // cleanup of something that may not exist
  }
}

// The bridge exists before any pod, so a server of the test can listen on its
// gateway address from the start; the CNI bridge plugin adopts it.
export function createBridge(): void {
  tryRun('ip', ['link', 'del', BRIDGE])
  run('ip', ['link', 'add', BRIDGE, 'type', 'bridge'])
  run('ip', ['addr', 'add', `${BRIDGE_GATEWAY}/24`, 'dev', BRIDGE])
  run('ip', ['link', 'set', BRIDGE, 'up'])
}

function containerdConfig(dir: string, socket: string): string {
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${dir}/cni"
`
}

function cniConfig(dir: string): string {
  return JSON.stringify({
    cniVersion: '0.4.0',
    name: 'vault-injector-e2e',
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: BRIDGE_CIDR, gateway: BRIDGE_GATEWAY }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  })
}

async function kubeletConfig(dir: string, socket: string): Promise<string> {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // The node's address is the bridge's host side: the kubelet refuses a loopback
    // node IP (pods would get no status.hostIP), and the API server reaches it there.
    address: BRIDGE_GATEWAY,
    port: await freePort(),
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: await freePort(),
    authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${CGROUP_ROOT}`,
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${socket}`,
    podLogsDir: join(dir, 'pod-logs'),
    serializeImagePulls: false,
    // The images were imported, not pulled: never collect them.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    syncFrequency: '5s',
    fileCheckFrequency: '5s',
  })
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .map((path) => path.replace(/\\040/g, ' '))
    .filter((path) => path.startsWith(dir + '/'))
}

// The kubelet's cgroup root: a tree of our own, so that killing what is left
// in it at the end never touches another kubelet's pods on this host. The
// kubelet requires it to exist in every cgroup v1 hierarchy.
const CGROUP_ROOT = 'vault-injector-e2e'
const CGROUP_FS = '/sys/fs/cgroup'

function createCgroupRoot(): void {
  for (const entry of readdirSync(CGROUP_FS, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === 'unified') continue
    try {
      mkdirSync(join(CGROUP_FS, entry.name, CGROUP_ROOT), { recursive: true })
    } catch {
      // a hierarchy that takes no new groups (or a link to another one)
    }
  }
}
const POD_CGROUP = join(CGROUP_FS, 'pids', CGROUP_ROOT)

function killTasks(socket: string): void {
  let ids: string[] = []
  try {
    ids = run('ctr', ['--address', socket, '-n', 'k8s.io', 'tasks', 'list', '-q']).split('\n').filter(Boolean)
  } catch {
    return // containerd is not running
  }
  for (const id of ids) tryRun('ctr', ['--address', socket, '-n', 'k8s.io', 'tasks', 'kill', '--all', '--signal', 'SIGKILL', id])
}

// Every process still in the pods' cgroups: what a killed shim left behind.
function killCgroup(dir: string): void {
  let entries: string[]
  try {
    entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name))
  } catch {
    return
  }
  for (const child of entries) killCgroup(child)
  let pids: string[] = []
  try {
    pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)
  } catch {
    return
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

// Starts the node; `images` are docker-archive files to import first.
// What an earlier run that was killed (tap's timeout, a signal) left behind:
// its pods' processes, the kubelet's mounts under its folder, the bridge.
// test/kubelet/run.sh holds a lock, so no other run is using them.
function cleanLeftovers(): void {
  killCgroup(POD_CGROUP)
  const stale = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\040/g, ' '))
    .filter((path) => /^\/tmp\/vault-injector-e2e-[^/]+\/node\//.test(path))
  for (const path of stale.reverse()) tryRun('umount', ['-l', path])
}

export async function startNode(cp: ControlPlane, images: string[]): Promise<Node> {
  cleanLeftovers()
  createCgroupRoot()
  const dir = join(cp.dir, 'node')
  const containerdDir = join(dir, 'containerd')
  const socket = join(containerdDir, 'containerd.sock')
  for (const sub of ['cni', 'ipam', 'kubelet', 'pod-logs', 'certs']) mkdirSync(join(dir, sub), { recursive: true })
  mkdirSync(join(containerdDir, 'cni'), { recursive: true })
  writeFileSync(join(containerdDir, 'config.toml'), containerdConfig(containerdDir, socket))
  writeFileSync(join(containerdDir, 'cni', '10-vault-injector-e2e.conflist'), cniConfig(dir))
  writeFileSync(join(dir, 'kubelet.yaml'), await kubeletConfig(dir, socket))

  const processes: Process[] = []
  // After containerd: a shim or process left in the pods' cgroups, what the
  // kubelet mounted (so the folder can be removed), the bridge.
  const cleanUp = (): void => {
    tryRun('pkill', ['-KILL', '-f', `containerd-shim-runc-v2 .*-address ${socket}`])
    killCgroup(POD_CGROUP)
    for (const path of mountsUnder(cp.dir).reverse()) tryRun('umount', ['-l', path])
    tryRun('ip', ['link', 'del', BRIDGE])
  }
  // Ended by tap's timeout or a signal: the containers, shims and mounts are
  // not our child processes, so nothing else would end them.
  const forget = atAbort(() => {
    killTasks(socket)
    cleanUp()
  })
  const stop = async (): Promise<void> => {
    forget()
    // The kubelet and controllers first (they would restart what we kill),
    // then every container through containerd, so their shims reap them.
    const containerd = processes.shift()
    for (const proc of processes.reverse()) await proc.stop()
    killTasks(socket)
    await containerd?.stop()
    cleanUp()
  }

  try {
    const containerd = start('containerd', ['--config', join(containerdDir, 'config.toml')])
    processes.push(containerd)
    await waitFor('containerd', async () => {
      if (containerd.child.exitCode !== null) throw new Fatal(`containerd exited: ${containerd.output.join('').slice(-2000)}`)
      try {
        run('ctr', ['--address', socket, 'version'])
        return true
      } catch {
        return false
      }
    })
    for (const image of images) run('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'import', image])

    const kcm = start(join(BIN, 'kube-controller-manager'), [
      `--kubeconfig=${cp.kubeconfigPath}`,
      '--leader-elect=false',
      '--secure-port=0',
      `--service-account-private-key-file=${join(cp.dir, 'sa.key')}`,
      `--root-ca-file=${join(cp.dir, 'ca.crt')}`,
      '--use-service-account-credentials=false',
      '--v=0',
    ])
    processes.push(kcm)
    const scheduler = start(join(BIN, 'kube-scheduler'), [`--kubeconfig=${cp.kubeconfigPath}`, '--leader-elect=false', '--secure-port=0', '--v=0'])
    processes.push(scheduler)
    const kubelet = start(join(BIN, 'kubelet'), [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${cp.kubeconfigPath}`,
      `--root-dir=${join(dir, 'kubelet')}`,
      `--cert-dir=${join(dir, 'certs')}`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${BRIDGE_GATEWAY}`,
      '--oom-score-adj=0',
      '--v=1',
    ])
    processes.push(kubelet)
    for (const [name, proc] of [['kube-controller-manager', kcm], ['kube-scheduler', scheduler], ['kubelet', kubelet]] as const) {
      proc.child.once('exit', (code) => {
        if (code !== 0 && code !== null) process.stderr.write(`${name} exited with ${code}: ${proc.output.join('').slice(-3000)}\n`)
      })
    }
    await waitFor(
      `node ${NODE_NAME} Ready`,
      async () => {
        if (kubelet.child.exitCode !== null) throw new Fatal(`kubelet exited: ${kubelet.output.join('').slice(-4000)}`)
        return nodeReady(cp)
      },
      180_000,
    )
  } catch (error) {
    await stop()
    throw error
  }
  return { containerdSocket: socket, stop }
}

async function nodeReady(cp: ControlPlane): Promise<boolean> {
  const node = await cp.kubeConfig
    .makeApiClient(CoreV1Api)
    .readNode({ name: NODE_NAME })
    .catch(() => undefined)
  return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
}
