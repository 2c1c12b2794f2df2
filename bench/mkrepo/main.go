// Command mkrepo builds a meta log of a given size for the scripts in
// bench/: mkrepo DIR APPS EVENTS_PER_APP [fleet]. With fleet, every app
// follows a channel a release ahead of it (fixture.BuildFleet).
package main

import (
	"fmt"
	"os"
	"strconv"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
)

func main() {
	fleet := len(os.Args) == 5 && os.Args[4] == "fleet"
	if len(os.Args) != 4 && !fleet {
		fmt.Fprintln(os.Stderr, "usage: mkrepo DIR APPS EVENTS_PER_APP [fleet]")
		os.Exit(2)
	}
	apps, err1 := strconv.Atoi(os.Args[2])
	per, err2 := strconv.Atoi(os.Args[3])
	if err1 != nil || err2 != nil || apps < 1 || per < 1 {
		fmt.Fprintln(os.Stderr, "mkrepo: APPS and EVENTS_PER_APP are positive whole numbers")
		os.Exit(2)
	}
	build := fixture.Build
	if fleet {
		build = fixture.BuildFleet
	}
	if err := build(os.Args[1], apps, per); err != nil {
		fmt.Fprintln(os.Stderr, "mkrepo:", err)
		os.Exit(1)
	}
}
