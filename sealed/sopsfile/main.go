package sopsfile

import (
	"encoding/json"
	"fmt"
	"io"

	"git.coopcloud.tech/coop-cloud/meta/sealed"
)

// maxRequest bounds what meta-seal reads from stdin: env files are small.
const maxRequest = 256 << 20

// Version is what `meta-seal --version` prints: the protocol it speaks,
// which is what must match meta's, and the module version it was built
// from, for people.
func Version() string {
	v := sealed.ModuleVersion()
	if v == "" {
		v = "devel"
	}
	return fmt.Sprintf("meta-seal protocol %d, %s %s", sealed.Protocol, sealed.ModulePath, v)
}

// Main is meta-seal: one JSON request on stdin, one response on stdout.
// It returns the exit code; tests run it in-process.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "--version" {
		fmt.Fprintln(stdout, Version())
		return 0
	}
	if len(args) > 0 {
		fmt.Fprintln(stderr, "meta-seal: meta's encryption helper; it takes a JSON request on stdin and no arguments (or --version)")
		return 2
	}
	in, err := io.ReadAll(io.LimitReader(stdin, maxRequest))
	if err != nil {
		fmt.Fprintln(stderr, "meta-seal: read request:", err)
		return 1
	}
	var req sealed.Request
	if err := json.Unmarshal(in, &req); err != nil {
		fmt.Fprintln(stderr, "meta-seal: request is not JSON:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(Serve(req)); err != nil {
		fmt.Fprintln(stderr, "meta-seal: write response:", err)
		return 1
	}
	return 0
}
