package sopsfile

import (
	"encoding/json"
	"fmt"
	"io"

	"git.coopcloud.tech/coop-cloud/meta/sealed"
)

// maxRequest bounds what meta-seal reads from stdin: env files are small.
const maxRequest = 256 << 20

// Main is meta-seal: one JSON request on stdin, one response on stdout.
// It returns the exit code; tests run it in-process.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "meta-seal: meta's encryption helper; it takes a JSON request on stdin and no arguments")
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
