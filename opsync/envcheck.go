package opsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// What env a deploy ran with. abra reads its own env file for the app, not
// the log's sealed one, so a deploy names the sealed env's digest only when
// meta compared the two and found they say the same (dotenv.LocalDiff:
// what abra reads, apart from the version abra writes into its file);
// otherwise the event says it ran with a local env (Event.local_env) and
// names no digest, rather than claim an env it may not have run with.

// markEnv settles, for the deploys among events, which env they ran with:
// before are the app's env files as abra read them.
func (r *Runner) markEnv(ctx context.Context, domain string, before []envFile, events []recorded) {
	var deploys []*metav1.Event
	for _, e := range events {
		if record.IsDeployKind(e.ev.GetKind()) {
			deploys = append(deploys, e.ev)
		}
	}
	if len(deploys) == 0 {
		return
	}
	digest, err := r.sealedRanWith(ctx, domain, before)
	if err != nil {
		r.Warn("recorded as run with a local env: %v", err)
	}
	for _, ev := range deploys {
		ev.EnvDigest, ev.LocalEnv = digest, digest == ""
	}
}

// sealedRanWith is the digest of the log's sealed env of domain when the
// one env file abra has for it says the same, else "". The error says why
// meta could not tell, or how the files differ (key names only); none when
// there is nothing to compare.
func (r *Runner) sealedRanWith(ctx context.Context, domain string, before []envFile) (string, error) {
	if len(before) != 1 || before[0].data == nil || r.OpenEnv == nil {
		return "", nil
	}
	sealedEnv, digest, err := r.OpenEnv(ctx, domain)
	switch {
	case errors.Is(err, store.ErrNoEnv), errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("meta could not read the log's env of %s to compare: %w", domain, err)
	}
	local, err := dotenv.Parse(before[0].Path, before[0].data)
	if err != nil {
		return "", fmt.Errorf("meta could not compare %s with the log's env: %w", before[0].Path, err)
	}
	if c := dotenv.LocalDiff(sealedEnv, local); !c.Empty() {
		return "", fmt.Errorf("%s differs from the log's env of %s in %s", before[0].Path, domain, strings.Join(append(append(c.Changed, c.Added...), c.Removed...), ", "))
	}
	return digest, nil
}
