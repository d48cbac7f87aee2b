// Package mlog: the part of monis.app/mlog's API that the Secrets Store CSI
// Driver v1.6.0 calls (cmd/secrets-store-csi-driver, pkg/secrets-store), on
// klog, for an e2e build of the driver binary; the module proxy does not
// serve monis.app/mlog.
package mlog

import (
	"context"
	"fmt"
	"os"

	"k8s.io/klog/v2"
)

type LogFormat string

const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

// Setup returns what to run at exit: flush klog.
func Setup() func() { return klog.Flush }

// ValidateAndSetKlogLevelAndFormatGlobally accepts the level klog already has
// and the text format; JSON is refused (this build logs text only).
func ValidateAndSetKlogLevelAndFormatGlobally(_ context.Context, level klog.Level, format LogFormat) error {
	if level < -1 {
		return fmt.Errorf("invalid log level %d", level)
	}
	if format != FormatText {
		return fmt.Errorf("log format %q is not supported by this build", format)
	}
	return nil
}

func Error(msg string, err error, keysAndValues ...any) { klog.ErrorS(err, msg, keysAndValues...) }

func Fatal(err error, keysAndValues ...any) {
	klog.ErrorS(err, "fatal error", keysAndValues...)
	klog.Flush()
	os.Exit(1)
}
