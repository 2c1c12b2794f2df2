// Command mkrepo builds a meta log of a given size for the scripts in
// bench/: mkrepo DIR APPS EVENTS_PER_APP.
package main

import (
	"fmt"
	"os"
	"strconv"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: mkrepo DIR APPS EVENTS_PER_APP")
		os.Exit(2)
	}
	apps, err1 := strconv.Atoi(os.Args[2])
	per, err2 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil || apps < 1 || per < 1 {
		fmt.Fprintln(os.Stderr, "mkrepo: APPS and EVENTS_PER_APP are positive whole numbers")
		os.Exit(2)
	}
	if err := fixture.Build(os.Args[1], apps, per); err != nil {
		fmt.Fprintln(os.Stderr, "mkrepo:", err)
		os.Exit(1)
	}
}
