// Command meta-seal is meta's encryption helper: it reads one JSON request
// on stdin (see package sealed), encrypts or decrypts env files with sops
// and age, and writes the JSON response to stdout. meta runs it for its env,
// operator and access commands; people need not run it themselves.
// Request and response carry the protocol version each side speaks (see
// sealed.Protocol), and `meta-seal --version` prints it.
package main

import (
	"os"

	"git.coopcloud.tech/coop-cloud/meta/sealed/sopsfile"
)

func main() { os.Exit(sopsfile.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
