// vault-k8s-handler: HashiCorp vault-k8s's own mutation handler
// (github.com/hashicorp/vault-k8s/agent-inject.Handler, v1.6.2, the newest
// version the Go module proxy serves), built the way `vault-k8s agent-inject`
// (subcommand/injector) builds it, so tests and benchmarks can compare
// vault-injector with the real thing. test/e2e/build.sh builds it into
// ${VAULT_INJECTOR_E2E_CACHE:-~/.cache/vault-injector-e2e}/bin/vault-k8s.
//
// Interface
//
//	vault-k8s serve [flags]   HTTPS on -listen (default ":8080") with
//	                          -tls-cert-file/-tls-key-file (both required):
//	                          POST /mutate (the Handler, byte for byte) and
//	                          GET /health/ready (204), as the injector serves them.
//	vault-k8s batch [flags]   reads AdmissionReviews from stdin, one JSON document
//	                          per line, and writes for each exactly one line to
//	                          stdout: the AdmissionReview the Handler answers over
//	                          HTTP, or, when the Handler answers with an HTTP error
//	                          (bad JSON ...), {"httpStatus":N,"error":"<text>"}.
//	                          Empty input lines are skipped. Exits 0 at EOF.
//
// Flags are the injector's own names, defaults and AGENT_INJECT_* environment
// variables (an environment variable overrides the flag, as in vault-k8s):
// -vault-address (required), -vault-image, -vault-cacert-bytes, -proxy-address,
// -vault-auth-type, -vault-auth-path, -vault-namespace, -revoke-on-shutdown,
// -run-as-user, -run-as-group, -run-as-same-user, -set-security-context,
// -default-template, -cpu-request, -memory-request, -ephemeral-storage-request,
// -cpu-limit, -memory-limit, -ephemeral-storage-limit,
// -template-config-exit-on-retry-failure, -template-static-secret-render-interval,
// -auth-min-backoff, -auth-max-backoff, -disable-idle-connections,
// -disable-keep-alives, -log-level, -log-format, -listen, -tls-cert-file,
// -tls-key-file, -tls-min-version. AGENT_INJECT_TEMPLATE_MAX_CONNECTIONS_PER_HOST
// is environment-only in vault-k8s; here it is also the flag
// -template-max-connections-per-host. Logs (hclog, logger "handler") go to stderr;
// pass -log-level=error to keep the per-request "Request received" lines quiet.
//
// Not included: auto-TLS, leader election, caBundle patching and metrics, which
// need a Kubernetes API and do not change what the Handler answers.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-secure-stdlib/parseutil"
	agentInject "github.com/hashicorp/vault-k8s/agent-inject"
	"github.com/hashicorp/vault-k8s/agent-inject/agent"
)

type options struct {
	listen, logLevel, logFormat, certFile, keyFile, tlsMinVersion           string
	vaultAddress, vaultCACertBytes, proxyAddress, vaultImage                string
	vaultAuthType, vaultAuthPath, vaultNamespace                            string
	runAsUser, runAsGroup, defaultTemplate                                  string
	cpuRequest, memRequest, ephemeralRequest                                string
	cpuLimit, memLimit, ephemeralLimit                                      string
	staticSecretRenderInterval, authMinBackoff, authMaxBackoff              string
	disableIdleConnections, disableKeepAlives                               string
	revokeOnShutdown, runAsSameUser, setSecurityContext, exitOnRetryFailure bool
	maxConnectionsPerHost                                                   int64
}

// The flag each AGENT_INJECT_<X> variable overrides (subcommand/injector/flags.go,
// parseEnvs). Booleans and the integer go through parseutil as there.
var envToFlag = map[string]string{
	"LISTEN":                                 "listen",
	"LOG_LEVEL":                              "log-level",
	"LOG_FORMAT":                             "log-format",
	"TEMPLATE_CONFIG_EXIT_ON_RETRY_FAILURE":  "template-config-exit-on-retry-failure",
	"TEMPLATE_STATIC_SECRET_RENDER_INTERVAL": "template-static-secret-render-interval",
	"TEMPLATE_MAX_CONNECTIONS_PER_HOST":      "template-max-connections-per-host",
	"TLS_CERT_FILE":                          "tls-cert-file",
	"TLS_KEY_FILE":                           "tls-key-file",
	"TLS_MIN_VERSION":                        "tls-min-version",
	"VAULT_IMAGE":                            "vault-image",
	"VAULT_ADDR":                             "vault-address",
	"VAULT_CACERT_BYTES":                     "vault-cacert-bytes",
	"PROXY_ADDR":                             "proxy-address",
	"VAULT_AUTH_TYPE":                        "vault-auth-type",
	"VAULT_AUTH_PATH":                        "vault-auth-path",
	"VAULT_NAMESPACE":                        "vault-namespace",
	"REVOKE_ON_SHUTDOWN":                     "revoke-on-shutdown",
	"RUN_AS_USER":                            "run-as-user",
	"RUN_AS_GROUP":                           "run-as-group",
	"RUN_AS_SAME_USER":                       "run-as-same-user",
	"SET_SECURITY_CONTEXT":                   "set-security-context",
	"DEFAULT_TEMPLATE":                       "default-template",
	"CPU_REQUEST":                            "cpu-request",
	"MEM_REQUEST":                            "memory-request",
	"EPHEMERAL_REQUEST":                      "ephemeral-storage-request",
	"CPU_LIMIT":                              "cpu-limit",
	"MEM_LIMIT":                              "memory-limit",
	"EPHEMERAL_LIMIT":                        "ephemeral-storage-limit",
	"AUTH_MIN_BACKOFF":                       "auth-min-backoff",
	"AUTH_MAX_BACKOFF":                       "auth-max-backoff",
	"DISABLE_IDLE_CONNECTIONS":               "disable-idle-connections",
	"DISABLE_KEEP_ALIVES":                    "disable-keep-alives",
}

var boolFlags = map[string]bool{
	"template-config-exit-on-retry-failure": true, "revoke-on-shutdown": true,
	"run-as-same-user": true, "set-security-context": true,
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("vault-k8s", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", ":8080", "Address to bind listener to.")
	fs.StringVar(&o.logLevel, "log-level", "info", "trace, debug, info, warn or err.")
	fs.StringVar(&o.logFormat, "log-format", "standard", "standard or json.")
	fs.StringVar(&o.certFile, "tls-cert-file", "", "PEM-encoded TLS certificate to serve.")
	fs.StringVar(&o.keyFile, "tls-key-file", "", "PEM-encoded TLS private key to serve.")
	fs.StringVar(&o.tlsMinVersion, "tls-min-version", "tls12", "tls12 or tls13.")
	fs.StringVar(&o.vaultAddress, "vault-address", "", "Address of the Vault server.")
	fs.StringVar(&o.vaultCACertBytes, "vault-cacert-bytes", "", "CA certificate to trust for TLS with Vault.")
	fs.StringVar(&o.proxyAddress, "proxy-address", "", "HTTP proxy address used to talk to the Vault service.")
	fs.StringVar(&o.vaultImage, "vault-image", agent.DefaultVaultImage, "Docker image for Vault.")
	fs.StringVar(&o.vaultAuthType, "vault-auth-type", agent.DefaultVaultAuthType, "Type of Vault Auth Method to use.")
	fs.StringVar(&o.vaultAuthPath, "vault-auth-path", agent.DefaultVaultAuthPath, "Mount path of the Vault Auth Method.")
	fs.StringVar(&o.vaultNamespace, "vault-namespace", "", "Vault enterprise namespace.")
	fs.BoolVar(&o.revokeOnShutdown, "revoke-on-shutdown", false, "Revoke the Vault token on pod termination.")
	fs.StringVar(&o.runAsUser, "run-as-user", strconv.Itoa(agent.DefaultAgentRunAsUser), "User (uid) to run Vault agent as.")
	fs.StringVar(&o.runAsGroup, "run-as-group", strconv.Itoa(agent.DefaultAgentRunAsGroup), "Group (gid) to run Vault agent as.")
	fs.BoolVar(&o.runAsSameUser, "run-as-same-user", agent.DefaultAgentRunAsSameUser, "Run the agents as the first app container's uid.")
	fs.BoolVar(&o.setSecurityContext, "set-security-context", agent.DefaultAgentSetSecurityContext, "Set SecurityContext in injected containers.")
	fs.StringVar(&o.defaultTemplate, "default-template", agent.DefaultTemplateType, "map or json.")
	fs.StringVar(&o.cpuRequest, "cpu-request", agent.DefaultResourceRequestCPU, "CPU request.")
	fs.StringVar(&o.memRequest, "memory-request", agent.DefaultResourceRequestMem, "Memory request.")
	fs.StringVar(&o.ephemeralRequest, "ephemeral-storage-request", "", "Ephemeral storage request.")
	fs.StringVar(&o.cpuLimit, "cpu-limit", agent.DefaultResourceLimitCPU, "CPU limit.")
	fs.StringVar(&o.memLimit, "memory-limit", agent.DefaultResourceLimitMem, "Memory limit.")
	fs.StringVar(&o.ephemeralLimit, "ephemeral-storage-limit", "", "Ephemeral storage limit.")
	fs.BoolVar(&o.exitOnRetryFailure, "template-config-exit-on-retry-failure", agent.DefaultTemplateConfigExitOnRetryFailure, "template_config.exit_on_retry_failure.")
	fs.StringVar(&o.staticSecretRenderInterval, "template-static-secret-render-interval", "", "template_config.static_secret_render_interval.")
	fs.Int64Var(&o.maxConnectionsPerHost, "template-max-connections-per-host", 0, "template_config.max_connections_per_host.")
	fs.StringVar(&o.authMinBackoff, "auth-min-backoff", "", "auto_auth min_backoff.")
	fs.StringVar(&o.authMaxBackoff, "auth-max-backoff", "", "auto_auth max_backoff.")
	fs.StringVar(&o.disableIdleConnections, "disable-idle-connections", "", "Comma-separated list.")
	fs.StringVar(&o.disableKeepAlives, "disable-keep-alives", "", "Comma-separated list.")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for suffix, name := range envToFlag {
		value := os.Getenv("AGENT_INJECT_" + suffix)
		if value == "" {
			continue
		}
		if boolFlags[name] {
			b, err := parseutil.ParseBool(value)
			if err != nil {
				return nil, fmt.Errorf("AGENT_INJECT_%s: %w", suffix, err)
			}
			value = strconv.FormatBool(b)
		}
		if name == "template-max-connections-per-host" {
			n, err := parseutil.ParseInt(value)
			if err != nil {
				return nil, fmt.Errorf("AGENT_INJECT_%s: %w", suffix, err)
			}
			value = strconv.FormatInt(n, 10)
		}
		if err := fs.Set(name, value); err != nil {
			return nil, fmt.Errorf("AGENT_INJECT_%s: %w", suffix, err)
		}
	}
	if o.vaultAddress == "" {
		return nil, fmt.Errorf("no Vault service configured (-vault-address or AGENT_INJECT_VAULT_ADDR)")
	}
	if o.defaultTemplate != "map" && o.defaultTemplate != "json" {
		return nil, fmt.Errorf("invalid default flag type: %s", o.defaultTemplate)
	}
	for _, d := range []string{o.authMinBackoff, o.authMaxBackoff} {
		if d != "" {
			if _, err := time.ParseDuration(d); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

func logLevel(s string) (hclog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return hclog.Trace, nil
	case "debug":
		return hclog.Debug, nil
	case "notice", "info", "":
		return hclog.Info, nil
	case "warn", "warning":
		return hclog.Warn, nil
	case "err", "error":
		return hclog.Error, nil
	}
	return hclog.NoLevel, fmt.Errorf("unknown log level: %s", s)
}

// handler is agentInject.Handler exactly as subcommand/injector/command.go
// fills it in (Clientset is not used by the mutation path).
func handler(o *options, log hclog.Logger) *agentInject.Handler {
	return &agentInject.Handler{
		VaultAddress:               o.vaultAddress,
		VaultCACertBytes:           o.vaultCACertBytes,
		VaultAuthType:              o.vaultAuthType,
		VaultAuthPath:              o.vaultAuthPath,
		VaultNamespace:             o.vaultNamespace,
		ProxyAddress:               o.proxyAddress,
		ImageVault:                 o.vaultImage,
		RequireAnnotation:          true,
		Log:                        log,
		RevokeOnShutdown:           o.revokeOnShutdown,
		UserID:                     o.runAsUser,
		GroupID:                    o.runAsGroup,
		SameID:                     o.runAsSameUser,
		SetSecurityContext:         o.setSecurityContext,
		DefaultTemplate:            o.defaultTemplate,
		ResourceRequestCPU:         o.cpuRequest,
		ResourceRequestMem:         o.memRequest,
		ResourceRequestEphemeral:   o.ephemeralRequest,
		ResourceLimitCPU:           o.cpuLimit,
		ResourceLimitMem:           o.memLimit,
		ResourceLimitEphemeral:     o.ephemeralLimit,
		ExitOnRetryFailure:         o.exitOnRetryFailure,
		StaticSecretRenderInterval: o.staticSecretRenderInterval,
		MaxConnectionsPerHost:      o.maxConnectionsPerHost,
		AuthMinBackoff:             o.authMinBackoff,
		AuthMaxBackoff:             o.authMaxBackoff,
		DisableIdleConnections:     o.disableIdleConnections,
		DisableKeepAlives:          o.disableKeepAlives,
	}
}

func serve(o *options, h *agentInject.Handler) error {
	if o.certFile == "" || o.keyFile == "" {
		return fmt.Errorf("serve needs -tls-cert-file and -tls-key-file")
	}
	minVersion := map[string]uint16{"tls12": tls.VersionTLS12, "tls13": tls.VersionTLS13}[o.tlsMinVersion]
	if minVersion == 0 {
		return fmt.Errorf("invalid or unsupported TLS version %q", o.tlsMinVersion)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", h.Handle)
	mux.HandleFunc("/health/ready", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	server := &http.Server{
		Addr:      o.listen,
		Handler:   mux,
		TLSConfig: &tls.Config{MinVersion: minVersion},
		ErrorLog:  h.Log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}),
	}
	fmt.Fprintf(os.Stderr, "Listening on %q...\n", o.listen)
	return server.ListenAndServeTLS(o.certFile, o.keyFile)
}

// batch runs each line through the same Handle method the server uses, so the
// answer is what the API server would receive.
func batch(h *agentInject.Handler) error {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			req := httptest.NewRequest(http.MethodPost, "/mutate", strings.NewReader(string(line)))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.Handle(rec, req)
			body := strings.TrimRight(rec.Body.String(), "\n")
			if rec.Code != http.StatusOK {
				b, _ := json.Marshal(map[string]any{"httpStatus": rec.Code, "error": body})
				body = string(b)
			}
			if _, werr := out.WriteString(body + "\n"); werr != nil {
				return werr
			}
			// One answer per request line, at once: a caller may write the next
			// request only after reading this answer.
			if ferr := out.Flush(); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			if err.Error() == "EOF" {
				return nil
			}
			return err
		}
	}
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "serve" && os.Args[1] != "batch") {
		fmt.Fprintln(os.Stderr, "usage: vault-k8s serve|batch [flags] (see the comment at the top of main.go)")
		os.Exit(2)
	}
	o, err := parse(os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "vault-k8s:", err)
		os.Exit(2)
	}
	level, err := logLevel(o.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vault-k8s:", err)
		os.Exit(2)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "handler", Level: level, JSONFormat: o.logFormat == "json", Output: os.Stderr})
	h := handler(o, log)
	if os.Args[1] == "serve" {
		err = serve(o, h)
	} else {
		err = batch(h)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vault-k8s:", err)
		os.Exit(1)
	}
}
