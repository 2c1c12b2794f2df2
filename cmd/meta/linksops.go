//go:build linksops

package main

// Built with -tags linksops, meta links sops as it would if the helper's
// work were done in-process: bench/env.sh measures what that costs every
// command's start-up. Release builds never set the tag.
import _ "git.coopcloud.tech/coop-cloud/meta/sealed/sopsfile"
