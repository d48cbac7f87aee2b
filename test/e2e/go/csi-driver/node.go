package main

// node-publish and node-unpublish play the kubelet's side of an inline CSI
// volume against the real driver binary (secrets-store-csi-driver, built by
// test/e2e/build.sh): the csi.v1 Node calls over its unix socket, as the
// kubelet makes them for a pod's `csi` volume with readOnly: true.
//
//	csi-driver node-publish -endpoint DIR/csi.sock -volume-id ID -target DIR -volume-context ctx.json
//	csi-driver node-unpublish -endpoint DIR/csi.sock -volume-id ID -target DIR

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func nodeMain(command string, args []string) {
	flags := flag.NewFlagSet(command, flag.ExitOnError)
	endpoint := flags.String("endpoint", "", "the driver's unix socket")
	volumeID := flags.String("volume-id", "", "the volume handle (the kubelet's csi-<hash>)")
	target := flags.String("target", "", "the pod's volume folder")
	contextFile := flags.String("volume-context", "", "the volume context (JSON object): the volume's attributes and the pod's, tokens included")
	timeout := flags.Duration("timeout", 60*time.Second, "deadline of the call")
	_ = flags.Parse(args)

	conn, err := grpc.NewClient("unix:"+*endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("%v", err)
	}
	defer conn.Close()
	node := csi.NewNodeClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	switch command {
	case "node-publish":
		attrib := map[string]string{}
		readJSON(*contextFile, &attrib)
		_, err = node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
			VolumeId:   *volumeID,
			TargetPath: *target,
			VolumeCapability: &csi.VolumeCapability{
				AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
				AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
			},
			Readonly:      true,
			VolumeContext: attrib,
		})
	case "node-unpublish":
		_, err = node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: *volumeID, TargetPath: *target})
	}
	if err != nil {
		fail("%s: %v", command, err)
	}
	os.Exit(0)
}
