// Package doctor checks, read-only, everything a clone of the log needs to
// go on, and names the way out of each problem: the log itself, its branch
// and remote, the operator's identity, meta-seal and the age identity,
// NATS, and the states a clone can be left in (quarantined commits,
// unpushed events, commits set aside, a write a killed meta left half
// done, hand edits). It sits above the log (store), the encryption (sealed)
// and the notifications (notify), and changes none of them.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Severity says how much a check's outcome matters.
type Severity string

// Severities, from best to worst.
const (
	OK Severity = "ok"
	// Warning: the clone goes on, but something needs the operator.
	Warning Severity = "warning"
	// Problem: something the clone cannot go on with until it is fixed.
	Problem Severity = "problem"
)

// Check is one thing the doctor looked at. Its JSON keys are part of
// meta's interface (`meta doctor --json`).
type Check struct {
	Name     string   `json:"check"`
	Severity Severity `json:"status"`
	Detail   string   `json:"detail"`
	// Fix is the command (or step) that gets out of it, when not OK.
	Fix string `json:"fix,omitempty"`
}

// Inputs are what the doctor examines; each is looked at only through
// these, so that nothing is found in a way the commands would not.
type Inputs struct {
	// Store is the open log; OpenErr why it could not be opened.
	Store   *store.Store
	OpenErr error
	// Operator works out who is writing, as the commands do.
	Operator func() (*metav1.Actor, error)
	// Helper finds meta-seal; Identity the operator's age identity.
	Helper   func() (sealed.Helper, error)
	Identity func() (sealed.Identity, error)
	// NATS is how to reach NATS when one is configured (URL empty: none).
	NATS notify.Options
	// Offline skips everything that needs the network.
	Offline bool
}

// Timeout bounds each check that goes over the network.
const Timeout = 10 * time.Second

// Run runs every check, in an order that reads from the ground up.
func Run(ctx context.Context, in Inputs) []Check {
	var out []Check
	add := func(c Check) { out = append(out, c) }
	if in.Store == nil {
		add(Check{Name: "log", Severity: Problem, Detail: errText(in.OpenErr), Fix: "run meta in the log's directory or pass --dir; `meta init` starts one, `meta init DIR --remote URL` joins one"})
		add(identity(in, nil))
		add(seal(ctx, in, nil))
		add(natsCheck(ctx, in))
		return out
	}
	s := in.Store
	st, err := s.Status(ctx)
	if err != nil {
		add(Check{Name: "log", Severity: Problem, Detail: errText(err), Fix: "`meta verify` says more"})
		return out
	}
	add(Check{Name: "log", Severity: OK, Detail: fmt.Sprintf("%s, branch %s", s.Root(), st.Branch)})
	add(remote(ctx, in, st))
	add(identity(in, s))
	add(seal(ctx, in, s))
	add(natsCheck(ctx, in))
	add(quarantine(st))
	add(trust(ctx, s))
	add(unpushed(st))
	add(aside(st))
	add(interrupted(st))
	add(workTree(ctx, s, st))
	return out
}

// Failed says whether any check found a problem.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Severity == Problem {
			return true
		}
	}
	return false
}

func remote(ctx context.Context, in Inputs, st *store.Status) Check {
	c := Check{Name: "remote"}
	switch {
	case st.Remote == "":
		c.Severity, c.Detail = Warning, "none: the log is not shared"
		c.Fix = "git -C " + in.Store.Root() + " remote add origin URL, then meta sync"
		return c
	case in.Offline:
		c.Severity, c.Detail = OK, st.Remote+" (not asked: --offline)"
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if err := in.Store.Reach(ctx); err != nil {
		c.Severity, c.Detail = Problem, st.Remote+": "+errText(err)
		c.Fix = "check the URL (git remote get-url origin) and your access to it (ssh keys, tokens); meta appends with --offline meanwhile"
		if strings.Contains(err.Error(), "has no branch") {
			c.Severity, c.Fix = Warning, "meta sync"
		}
		return c
	}
	c.Severity, c.Detail = OK, st.Remote+" answers, branch "+st.Branch
	if st.Failure != "" {
		c.Severity = Warning
		c.Detail += fmt.Sprintf("; but the last sync failed at %s: %s", st.LastFailure.Format(time.RFC3339), st.Failure)
		c.Fix = st.FailureFix
	}
	return c
}

func identity(in Inputs, s *store.Store) Check {
	c := Check{Name: "identity"}
	a, err := in.Operator()
	if err != nil {
		c.Severity, c.Detail = Problem, errText(err)
		c.Fix = `pass --operator "Name <email>", set META_OPERATOR, or git config --global user.name NAME`
		return c
	}
	c.Severity, c.Detail = OK, a.GetName()
	if a.GetEmail() != "" {
		c.Detail += " <" + a.GetEmail() + ">"
	}
	if s != nil {
		// Operators are named on their own in meta.yaml; a name that
		// matches is worth saying, one that does not is no fault (the
		// meta-seal check says what the age identity can read).
		if o, ok := s.Config().Operator(operatorName(a.GetName())); ok {
			c.Detail += ", operator " + o.Name + " in meta.yaml"
		} else if len(s.Config().Operators) > 0 {
			c.Detail += "; meta.yaml names no operator " + operatorName(a.GetName()) + " (meta operator ls lists them)"
		}
	}
	return c
}

func seal(ctx context.Context, in Inputs, s *store.Store) Check {
	c := Check{Name: "meta-seal"}
	h, err := in.Helper()
	if err != nil {
		c.Severity, c.Detail, c.Fix = Warning, errText(err), "env commands need it; the rest of meta works without"
		return c
	}
	id, err := in.Identity()
	if err != nil {
		c.Severity, c.Detail = Warning, h.Path+"; but no age identity: "+errText(err)
		c.Fix = "env commands need one; the rest of meta works without"
		return c
	}
	c.Severity, c.Detail = OK, h.Path+", identity "+id.Source
	if s == nil {
		return c
	}
	files, err := s.EnvFiles()
	if err != nil || len(files) == 0 {
		return c
	}
	data := make([][]byte, len(files))
	for i, f := range files {
		data[i] = f.Data
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	_, errs, err := h.Open(ctx, id, data...)
	if err != nil {
		c.Severity, c.Detail = Problem, h.Path+": "+errText(err)
		c.Fix = "reinstall meta-seal at meta's version"
		return c
	}
	readable := 0
	for _, e := range errs {
		if e == nil {
			readable++
		} else if !errors.Is(e, sealed.ErrNotRecipient) {
			c.Severity = Warning
		}
	}
	c.Detail += fmt.Sprintf("; decrypts %d of %d env files", readable, len(files))
	if c.Severity == Warning {
		c.Fix = "meta verify names the env files that are not sealed as they should be"
	}
	return c
}

func natsCheck(ctx context.Context, in Inputs) Check {
	c := Check{Name: "nats"}
	if in.NATS.URL == "" {
		c.Severity, c.Detail = OK, "none configured: followers learn of events from meta serve (embedded NATS) or webhooks"
		return c
	}
	if in.Offline {
		c.Severity, c.Detail = OK, in.NATS.URL+" (not asked: --offline)"
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	o := in.NATS
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = Timeout
	}
	if err := notify.Ping(ctx, o); err != nil {
		c.Severity, c.Detail = Problem, errText(err)
		c.Fix = "check --nats / META_NATS_URL and --nats-creds / META_NATS_CREDS; events are still committed and pushed, and meta serve catches followers up"
		return c
	}
	c.Severity, c.Detail = OK, in.NATS.URL+" answers, with JetStream"
	return c
}

func quarantine(st *store.Status) Check {
	c := Check{Name: "quarantine", Severity: OK, Detail: "no quarantined commits to acknowledge"}
	if len(st.Unsendable) > 0 {
		c.Severity = Problem
		c.Detail = fmt.Sprintf("%s breaking the log's rules, so nothing is pushed: %s", record.Count(len(st.Unsendable), "local commit"), shortList(st.Unsendable))
		c.Fix = "meta repair"
		return c
	}
	if len(st.Quarantined) > 0 {
		c.Severity = Warning
		var ids []string
		for _, q := range st.Quarantined {
			ids = append(ids, q.Short()+" by "+q.Author)
		}
		c.Detail = fmt.Sprintf("%s, not read: %s", record.Count(len(ids), "quarantined commit"), strings.Join(ids, ", "))
		c.Fix = "meta quarantine ls explains; meta repair puts the files back as history has them; meta quarantine ack silences them"
	}
	return c
}

// trust checks the pinned operators: that history still holds the pin,
// and, where the log requires signatures, that this clone can sign.
func trust(ctx context.Context, s *store.Store) Check {
	c := Check{Name: "trust", Severity: OK}
	p, ok, err := s.Pinned()
	switch {
	case err != nil:
		c.Severity, c.Detail, c.Fix = Problem, errText(err), "meta trust reset, once you have checked the operators with your collective"
		return c
	case !ok:
		c.Detail = "no operators pinned yet (the next meta sync pins them)"
		return c
	}
	if err := s.PinHolds(ctx, p); err != nil {
		c.Severity, c.Detail, c.Fix = Problem, errText(err), "ask your collective why history was rewritten, then meta trust reset"
		return c
	}
	policy := "signatures optional"
	if s.Config().SignaturesRequired() {
		policy = "signatures required"
	}
	c.Detail = fmt.Sprintf("%s; operators pinned at %s (%s)", policy, p.Commit[:12], record.Count(len(p.Operators), "key"))
	return c
}

func unpushed(st *store.Status) Check {
	c := Check{Name: "unpushed", Severity: OK, Detail: "none"}
	if n := len(st.Unpushed); n > 0 {
		c.Severity, c.Detail, c.Fix = Warning, record.Count(n, "event")+" only this clone has", "meta sync"
	}
	return c
}

func aside(st *store.Status) Check {
	c := Check{Name: "set aside", Severity: OK, Detail: "nothing"}
	if n := len(st.SetAside); n > 0 {
		var ids, ways []string
		for _, a := range st.SetAside {
			ids = append(ids, a.Short()+" "+a.Subject)
			ways = append(ways, a.Short()+": "+a.WayOut())
		}
		c.Severity = Warning
		c.Detail = fmt.Sprintf("%s a sync set aside: %s", record.Count(n, "local commit"), strings.Join(ids, "; "))
		c.Fix = strings.Join(ways, "; ")
	}
	return c
}

func interrupted(st *store.Status) Check {
	c := Check{Name: "interrupted", Severity: OK, Detail: "nothing half done"}
	if st.Interrupted {
		c.Severity = Warning
		c.Detail = "a killed meta left a write or a sync half done"
		c.Fix = "meta sync (or any command that writes) finishes it"
	}
	return c
}

func workTree(ctx context.Context, s *store.Store, st *store.Status) Check {
	c := Check{Name: "work tree", Severity: OK, Detail: "as committed"}
	problems, err := s.WorkTreeProblems(ctx)
	if err != nil {
		c.Severity, c.Detail = Warning, errText(err)
		return c
	}
	var what []string
	for _, p := range problems {
		what = append(what, p.String())
	}
	if len(what) > 0 {
		c.Severity = Warning
		c.Detail = strings.Join(what, "; ")
		c.Fix = "git -C " + s.Root() + " checkout -- PATH drops a hand edit; meta env import records an env file's"
	}
	if n := len(st.OtherChanges); n > 0 {
		c.Detail += fmt.Sprintf("; %s meta does not manage changed (meta status lists them)", record.Count(n, "file"))
	}
	return c
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

func shortList(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:min(12, len(id))]
	}
	return strings.Join(out, ", ")
}

// operatorName suggests an operator name (lower-case letters, digits and
// dashes) for a person's name.
func operatorName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '_' || r == '.':
			b.WriteByte('-')
		}
	}
	if out := strings.Trim(b.String(), "-"); out != "" {
		return out
	}
	return "NAME"
}
