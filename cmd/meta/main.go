// Command meta keeps a collective's operator log: what is deployed where, by
// whom, since when. See README.md and `meta --help`.
package main

import "os"

func main() { os.Exit(Main()) }

// Main runs meta with the process's arguments and streams and returns its
// exit code; tests run it in-process.
func Main() int {
	return run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}
