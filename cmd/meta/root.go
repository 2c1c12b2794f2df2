package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/hub"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/gitrepo"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// Exit codes, documented in README.md.
const (
	exitOK         = 0
	exitFailed     = 1 // the command could not do its job: not found, verify findings, I/O, git
	exitBadUse     = 2 // the input was wrong: flags, names, ambiguous domain
	exitBusy       = 3 // another meta process held the log too long, or follows under the same --name; try again
	exitUnexpected = 4 // the log is not as the operator expected: --expect, another operator's change collides, a release recorded already, a channel's rule refuses, a recipe mismatch
	exitLocked     = 5 // another operator holds a lock on the app
)

// usageError marks errors in how meta was called.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// env is what every command gets: streams, environment and global flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	dir            string
	operator       string
	offline        bool // no remote work at all
	forceSync      bool // reads fetch even within the cooldown
	natsURL        string
	natsCreds      string
	natsNkey       string
	natsJSON       bool
	// opened are the logs the command opened, whose notes (what a sync
	// brought back, set aside or quarantined) are printed when it ends.
	opened []*store.Store
	// The key the log's commits are signed with (signer.go): chosen once
	// per command; noSigner says why there is none.
	signer       signing.Signer
	signerChosen bool
	noSigner     string
	sshAgent     *signing.Agent
}

// Output rules, after age's: messages to stderr start with "meta: ", are
// lower case and have no final period; stdout carries only the answer.
func (e *env) warn(format string, args ...any) {
	fmt.Fprintf(e.stderr, "meta: warning: %s\n", message(fmt.Sprintf(format, args...)))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	// Ctrl-C stops git subprocesses too; what meta wrote stays consistent.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if e.sshAgent != nil {
		e.sshAgent.Close()
	}
	err = e.signingHint(err)
	for _, s := range e.opened {
		for _, n := range s.Notes() {
			e.warn("%s", n)
		}
	}
	if err == nil {
		return exitOK
	}
	var silent silentError
	if !errors.As(err, &silent) {
		fmt.Fprintf(stderr, "meta: error: %s\n", message(err.Error()))
	}
	return exitCode(err)
}

// silentError carries an exit code for a failure the command already
// reported in full (verify's findings).
type silentError struct{ code int }

func (s silentError) Error() string { return fmt.Sprintf("exit %d", s.code) }

func exitCode(err error) int {
	var silent silentError
	switch {
	case errors.As(err, &silent):
		return silent.code
	case errors.Is(err, store.ErrBusy), errors.Is(err, hub.ErrDataInUse), errors.Is(err, notify.ErrNameInUse):
		return exitBusy
	case errors.Is(err, store.ErrLocked):
		return exitLocked
	case errors.Is(err, store.ErrUnexpected), errors.Is(err, store.ErrConflict),
		errors.Is(err, store.ErrRecorded), errors.Is(err, store.ErrNotAdmitted), errors.Is(err, store.ErrRecipe), errors.Is(err, store.ErrUncommitted), errors.Is(err, envs.ErrLocalChanges):
		return exitUnexpected
	case errors.As(err, new(usageError)),
		errors.Is(err, dotenv.ErrSyntax),
		errors.Is(err, dotenv.ErrSealed),
		errors.Is(err, dotenv.ErrKey),
		errors.Is(err, sealed.ErrRecipient),
		errors.Is(err, config.ErrOperator),
		errors.Is(err, hub.ErrOpenAPI),
		errors.Is(err, hub.ErrTLS),
		errors.Is(err, store.ErrNoSigner),
		errors.Is(err, store.ErrNotOperatorKey):
		return exitBadUse
	case errors.Is(err, projects.ErrInvalidName),
		errors.Is(err, record.ErrInvalid),
		errors.Is(err, store.ErrAmbiguous),
		errors.Is(err, store.ErrAmbiguousID),
		errors.Is(err, store.ErrManyLogs),
		errors.Is(err, store.ErrNested),
		errors.Is(err, store.ErrNeedAddress),
		errors.Is(err, store.ErrMoved),
		errors.Is(err, store.ErrBatchOpen),
		errors.Is(err, store.ErrNoBatch),
		errors.Is(err, store.ErrExists),
		errors.Is(err, store.ErrPurged):
		return exitBadUse
	}
	return exitFailed
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "meta",
		Short: "An append-only operator log for Co-op Cloud apps, kept in git",
		Long: `meta records every deploy, upgrade, rollback and other operator action as an
immutable event in a git repository, and folds each app's events into its
head: what is deployed, by whom, since when.

The log is found from --dir, else $META_DIR, else the nearest directory
upward holding meta.yaml, else the dir: of the operator's config
(~/.config/meta/config.yaml). The operator is --operator, else $META_OPERATOR,
else git's user.name and user.email.`,
		Version:           version(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.PersistentFlags().StringVar(&e.dir, "dir", "", "the log repository (default $META_DIR, else found upward from here)")
	root.PersistentFlags().StringVar(&e.operator, "operator", "", `who you are, "Name <email>" (default $META_OPERATOR, else git's user.name/user.email)`)
	root.PersistentFlags().BoolVar(&e.offline, "offline", false, "do no remote work: read the local log, append locally and push later with meta sync")
	root.PersistentFlags().BoolVar(&e.offline, "no-sync", false, "the same as --offline")
	root.PersistentFlags().BoolVar(&e.forceSync, "force-sync", false, "fetch before reading even if the last fetch is recent")
	root.PersistentFlags().StringVar(&e.natsURL, "nats", "", "NATS server or cluster to tell followers about new events (default $META_NATS_URL)")
	root.PersistentFlags().StringVar(&e.natsCreds, "nats-creds", "", "NATS credentials file (default $META_NATS_CREDS)")
	root.PersistentFlags().StringVar(&e.natsNkey, "nats-nkey", "", "NATS nkey seed file, e.g. the follower.nk meta serve writes (default $META_NATS_NKEY)")
	root.PersistentFlags().BoolVar(&e.natsJSON, "nats-json", false, "meta serve publishes events with a JSON body instead of protobuf (default $META_NATS_JSON=1)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%s: %w\nusage: %s", c.CommandPath(), err, c.UseLine())}
	})

	root.AddCommand(newInit(e), newAppend(e), newHead(e), newLog(e), newShow(e), newLs(e), newCat(e), newVerify(e), newSync(e), newStatus(e), newWatch(e), newServe(e), newEnv(e), newOperator(e), newAccess(e), newExec(e), newObserve(e), newLock(e), newUnlock(e), newBatch(e), newStamp(e), newQuarantine(e), newRepair(e), newAside(e), newDoctor(e), newPurge(e), newToken(e), newTrust(e), newSigners(e), newRelease(e), newChannel(e), newFollow(e), newUnfollow(e), newPlan(e), newRollout(e), newCheckpoint(e))
	appFlags(root)
	// cobra adds its completion command when the root runs; added now, it
	// gets the same argument checks (`meta completion bogus` exits 2).
	root.InitDefaultCompletionCmd()
	usageArgs(root)
	return root
}

// usageArgs makes every command's argument checks usage errors (exit 2),
// as its flag checks are, and an unknown subcommand of a group one.
func usageArgs(cmd *cobra.Command) {
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q; `%s --help` lists them", args[0], c.CommandPath(), c.CommandPath())}
			}
			return nil
		}
		// Run without a subcommand, a group is a usage error, as any
		// missing argument is: its usage lists the subcommands. meta
		// itself, run bare, shows its help.
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if !c.HasParent() {
				return c.Help()
			}
			return usageError{fmt.Errorf("%s: missing COMMAND; `%s --help` lists them\nusage: %s COMMAND", c.CommandPath(), c.CommandPath(), c.CommandPath())}
		}
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				var u usageError
				if errors.As(err, &u) {
					return err
				}
				return usageError{argError(c, args, err)}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		usageArgs(sub)
	}
}

// appFlags gives every command whose first argument is a DOMAIN the flags
// --project and --env, which name the app where the domain has events in
// more than one place; the command gets the domain as project/env/domain
// (projects.Ref), which the log reads back wherever it takes a domain.
// Commands with flags of those names of their own (append, env import)
// already mean the same by them.
func appFlags(cmd *cobra.Command) {
	if required, _, _ := positionals(cmd.Use); len(required) > 0 && required[0] == "DOMAIN" && cmd.Flags().Lookup("project") == nil && cmd.RunE != nil {
		var project, envName string
		cmd.Flags().StringVar(&project, "project", "", "the app's project, where its domain has events in more than one")
		cmd.Flags().StringVar(&envName, "env", "", "the app's env, where its domain has events in more than one")
		run := cmd.RunE
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				args[0] = projects.Ref(project, envName, args[0])
			}
			return run(c, args)
		}
	}
	for _, sub := range cmd.Commands() {
		appFlags(sub)
	}
}

// argError says what is wrong with a command's arguments in its own terms:
// which argument is missing, or which one is too many, by the names its
// usage line gives them, and shows that line. cobra's own words ("accepts
// 1 arg(s), received 0") say neither.
func argError(c *cobra.Command, args []string, err error) error {
	required, optional, variadic := positionals(c.Use)
	detail := err.Error()
	switch {
	case len(args) < len(required):
		detail = "missing " + strings.Join(required[len(args):], " ")
	case !variadic && len(args) > len(required)+optional:
		detail = fmt.Sprintf("unexpected argument %q", args[len(required)+optional])
	}
	return fmt.Errorf("%s: %s\nusage: %s", c.CommandPath(), detail, c.UseLine())
}

// positionals reads a usage line ("get DOMAIN [KEY]", "ack COMMIT...",
// "add NAME --age RECIPIENT") for the arguments it names: the required ones
// by name, how many optional ones, and whether the last repeats. Flags and
// what follows them are not arguments.
func positionals(use string) (required []string, optional int, variadic bool) {
	words := strings.Fields(use)
	for _, w := range words[min(1, len(words)):] {
		if w == "[flags]" || w == "--" {
			continue // "exec [flags] -- abra app COMMAND DOMAIN": what follows -- is named
		}
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "(") || w == "|" {
			break
		}
		variadic = strings.HasSuffix(strings.TrimSuffix(w, "]"), "...")
		if strings.HasPrefix(w, "[") {
			optional++
		} else {
			required = append(required, strings.TrimSuffix(w, "..."))
		}
	}
	return required, optional, variadic
}

// version is the module version meta was built as ("devel" for a build
// from a work tree), and the commit it was built from when the build
// recorded one (a build in a git checkout does; "modified" when the work
// tree had changes).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	v := "devel"
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var commit, modified string
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			commit = kv.Value
		case "vcs.modified":
			if kv.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if commit != "" {
		v += " (commit " + commit + modified + ")"
	}
	return v
}

// open finds and opens the log.
func (e *env) open() (*store.Store, error) {
	s, err := e.find()
	if err == nil {
		e.opened = append(e.opened, s)
		s.SetSigner(e.chooseSigner(s.Root(), s.Config()))
	}
	return s, err
}

// onCheck shows progress while the log checks a long stretch of its
// history (a fresh clone's first read, which starts as it opens): quiet
// under a second, as always.
func (e *env) onCheck() func(commits int, done bool) {
	var n atomic.Int64
	var stop func()
	return func(commits int, done bool) {
		n.Store(int64(commits))
		switch {
		case done && stop != nil:
			stop()
			stop = nil
		case !done && stop == nil:
			stop = e.progress(func() string { return "checking the log's history: " + record.Count(int(n.Load()), "commit") })
		}
	}
}

func (e *env) find() (*store.Store, error) {
	dir := e.dir
	if dir == "" {
		dir = e.getenv("META_DIR")
	}
	if dir != "" {
		return store.OpenWith(dir, store.OpenOptions{OnCheck: e.onCheck()})
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := store.Find(wd)
	if errors.Is(err, store.ErrNotLog) {
		// Outside any log: the operator's config may name theirs.
		if c, cerr := e.loadOperatorConfig(); cerr == nil && c.Dir != "" {
			return store.OpenWith(c.Dir, store.OpenOptions{OnCheck: e.onCheck()})
		}
	}
	if err != nil {
		return nil, err
	}
	return store.OpenWith(root, store.OpenOptions{OnCheck: e.onCheck()})
}

// natsOptions are the NATS settings the flags and environment give; an
// nkey seed file that cannot be read is an error naming it.
func (e *env) natsOptions() (url string, o notify.Options, err error) {
	url = firstNonEmpty(e.natsURL, e.getenv("META_NATS_URL"))
	o = notify.Options{URL: url, JSON: e.natsJSON || e.getenv("META_NATS_JSON") == "1"}
	if creds := firstNonEmpty(e.natsCreds, e.getenv("META_NATS_CREDS")); creds != "" {
		o.NATSOptions = append(o.NATSOptions, nats.UserCredentials(creds))
	}
	if seed := firstNonEmpty(e.natsNkey, e.getenv("META_NATS_NKEY")); seed != "" {
		opt, err := nats.NkeyOptionFromSeed(seed)
		if err != nil {
			return "", o, fmt.Errorf("--nats-nkey %s: %w", seed, err)
		}
		o.NATSOptions = append(o.NATSOptions, opt)
	}
	return url, o, nil
}

// openFresh opens the log for a read, first bringing it up to date with the
// remote when the cooldown allows; an unreachable remote is a warning.
func (e *env) openFresh(ctx context.Context) (*store.Store, error) {
	s, err := e.open()
	if err != nil {
		return nil, err
	}
	if e.offline {
		return s, e.warnQuarantined(ctx, s)
	}
	warning, err := s.Refresh(ctx, e.forceSync)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		e.warn("%s", warning)
	}
	return s, e.warnQuarantined(ctx, s)
}

// answer runs a read, and when it missed what a fetch could bring (an app,
// an env file's reader, an operator this clone does not know yet), fetches
// once, cooldown or not, and reads again: seconds after Alice pushes an
// app's first event, Bob's read must not say there is no such app.
func (e *env) answer(ctx context.Context, s *store.Store, read func() error) error {
	err := read()
	if err == nil || e.offline || !missed(err) {
		return err
	}
	fetched, warning, ferr := s.RefreshAfterMiss(ctx)
	if warning != "" {
		e.warn("%s", warning)
	}
	if ferr != nil || !fetched {
		return err
	}
	return read()
}

// missed reports whether err is a read's miss that the remote may answer.
func missed(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, sealed.ErrNotRecipient) || errors.Is(err, config.ErrOperator)
}

// warnQuarantined is what every read says until the operator acknowledges
// it: one line per quarantined commit, with its id and author.
func (e *env) warnQuarantined(ctx context.Context, s *store.Store) error {
	qs, err := s.Quarantine(ctx, false)
	if err != nil {
		return err
	}
	const most = 5
	for i, q := range qs {
		if i == most {
			e.warn("and %d more quarantined commits: `meta quarantine ls`", len(qs)-most)
			break
		}
		e.warn("quarantined commit %s by %s (%q): %s; reads leave out what it broke (`meta quarantine ls` explains, `meta quarantine ack %s` silences this)", q.Short(), q.Author, q.Subject, q.Summary(), q.Short())
	}
	return nil
}

// openAs opens the log and works out who is writing to it.
func (e *env) openAs() (*store.Store, *metav1.Actor, error) {
	s, err := e.open()
	if err != nil {
		return nil, nil, err
	}
	actor, err := e.actor(s.Root())
	if err != nil {
		return nil, nil, err
	}
	return s, actor, nil
}

// actor works out who is appending.
func (e *env) actor(root string) (*metav1.Actor, error) {
	var a *metav1.Actor
	var err error
	switch {
	case e.operator != "":
		a, err = record.ParseOperator(e.operator)
		if err != nil {
			return nil, usageError{fmt.Errorf("--operator: %w", err)}
		}
	case e.getenv("META_OPERATOR") != "":
		a, err = record.ParseOperator(e.getenv("META_OPERATOR"))
		if err != nil {
			return nil, usageError{fmt.Errorf("META_OPERATOR: %w", err)}
		}
	default:
		// The user's git identity, read here in the command layer: the log
		// itself takes its operator as a plain value.
		name, email, ok := gitrepo.UserIdentity(root)
		if !ok {
			return nil, usageError{errors.New("who are you? pass --operator \"Name <email>\", set META_OPERATOR, or set git's user.name")}
		}
		a = &metav1.Actor{Name: name, Email: email}
	}
	if host, err := os.Hostname(); err == nil {
		a.Host = host
	}
	return a, nil
}

// completeDomains offers the log's app domains to the shell.
func (e *env) completeDomains(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	s, err := e.open()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	apps, _ := s.Apps()
	var out []string
	for _, a := range apps {
		if strings.HasPrefix(a.App, toComplete) {
			out = append(out, a.App)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
