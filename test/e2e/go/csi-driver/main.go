// csi-driver plays the Secrets Store CSI Driver's side of a provider mount, with
// the driver's own code (module sigs.k8s.io/secrets-store-csi-driver v1.6.0):
// its provider/v1alpha1 gRPC client, its SecretProviderClass type, and
// fileutil.WritePayloads, the atomic writer that lays out the ..data folder.
// What nodeserver.go's NodePublishVolume does between reading the
// SecretProviderClass and writing the files is repeated here step by step;
// pkg/secrets-store itself cannot be imported (it needs monis.app/mlog, which
// the module proxy does not serve).
//
//	csi-driver -socket DIR/vault.sock -spc spc.yaml -volume-context ctx.json \
//	    -tokens tokens.json -target DIR [-current-versions versions.json]
//	csi-driver -socket DIR/vault.sock -version
//	csi-driver node-publish|node-unpublish ...   (node.go: the kubelet's calls to the real driver)
//
// Prints the object versions the provider returned as one JSON object.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"sigs.k8s.io/yaml"

	secretsstorev1 "sigs.k8s.io/secrets-store-csi-driver/apis/v1"
	"sigs.k8s.io/secrets-store-csi-driver/pkg/util/fileutil"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// As pkg/secrets-store/provider_client.go sets it.
const serviceConfig = `{"methodConfig":[{"name":[{"service":"v1alpha1.CSIDriverProvider"}],"waitForReady":true,
"retryPolicy":{"MaxAttempts":3,"InitialBackoff":"1s","MaxBackoff":"10s","BackoffMultiplier":1.1,"RetryableStatusCodes":["UNAVAILABLE"]}}]}`

// nodeserver.go: filePermission for the files it asks the provider for.
const filePermission os.FileMode = 0644

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "csi-driver: "+format+"\n", args...)
	os.Exit(1)
}

func readJSON(path string, into any) {
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		fail("%s: %v", path, err)
	}
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "node-publish" || os.Args[1] == "node-unpublish") {
		nodeMain(os.Args[1], os.Args[2:])
	}
	socket := flag.String("socket", "", "the provider's unix socket")
	version := flag.Bool("version", false, "call Version instead of Mount")
	spcFile := flag.String("spc", "", "SecretProviderClass YAML")
	contextFile := flag.String("volume-context", "", "the volume context the kubelet sends (JSON object)")
	tokensFile := flag.String("tokens", "", "csi.storage.k8s.io/serviceAccount.tokens as the kubelet sends it (JSON)")
	target := flag.String("target", "", "the target path (the pod's volume folder)")
	currentFile := flag.String("current-versions", "", "object versions currently mounted (JSON object), as rotation sends them")
	timeout := flag.Duration("timeout", 60*time.Second, "deadline of the call")
	flag.Parse()

	conn, err := grpc.NewClient("unix:"+*socket,
		grpc.WithAuthority("localhost"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig))
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	client := v1alpha1.NewCSIDriverProviderClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	if *version {
		resp, err := client.Version(ctx, &v1alpha1.VersionRequest{Version: "v1alpha1"})
		if err != nil {
			fail("Version: %v", err)
		}
		out, _ := json.Marshal(map[string]string{"version": resp.Version, "runtimeName": resp.RuntimeName, "runtimeVersion": resp.RuntimeVersion})
		fmt.Println(string(out))
		return
	}

	// getSecretProviderItem + getParametersFromSPC.
	spcYAML, err := os.ReadFile(*spcFile)
	if err != nil {
		fail("%v", err)
	}
	var spc secretsstorev1.SecretProviderClass
	if err := yaml.Unmarshal(spcYAML, &spc); err != nil {
		fail("%s: %v", *spcFile, err)
	}
	if len(spc.Spec.Parameters) == 0 {
		fail("parameters not set in %s/%s", spc.Namespace, spc.Name)
	}
	parameters := maps.Clone(spc.Spec.Parameters)
	// "send all the volume attributes sent from kubelet to the provider"
	attrib := map[string]string{}
	readJSON(*contextFile, &attrib)
	maps.Copy(parameters, attrib)
	if *tokensFile != "" {
		tokens, err := os.ReadFile(*tokensFile)
		if err != nil {
			fail("%v", err)
		}
		parameters["csi.storage.k8s.io/serviceAccount.tokens"] = string(tokens)
	}
	parametersStr, _ := json.Marshal(parameters)
	secretStr, _ := json.Marshal(map[string]string{})
	permissionStr, _ := json.Marshal(filePermission)

	// MountContent.
	current := map[string]string{}
	readJSON(*currentFile, &current)
	var objVersions []*v1alpha1.ObjectVersion
	for id, v := range current {
		objVersions = append(objVersions, &v1alpha1.ObjectVersion{Id: id, Version: v})
	}
	resp, err := client.Mount(ctx, &v1alpha1.MountRequest{
		Attributes:           string(parametersStr),
		Secrets:              string(secretStr),
		TargetPath:           *target,
		Permission:           string(permissionStr),
		CurrentObjectVersion: objVersions,
	})
	if err != nil {
		fail("Mount: %v", err)
	}
	if resp.GetError() != nil && len(resp.GetError().Code) > 0 {
		fail("mount request failed with provider error code %s", resp.GetError().Code)
	}
	if resp.GetObjectVersion() == nil {
		fail("missing object versions")
	}
	versions := map[string]string{}
	for _, v := range resp.GetObjectVersion() {
		versions[v.Id] = v.Version
	}
	if len(resp.GetFiles()) > 0 {
		if err := os.MkdirAll(*target, 0750); err != nil {
			fail("%v", err)
		}
		if err := fileutil.WritePayloads(*target, resp.GetFiles()); err != nil {
			fail("writing files: %v", err)
		}
	}
	out, _ := json.Marshal(versions)
	fmt.Println(string(out))
}
