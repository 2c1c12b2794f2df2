package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Network work and whole-history reads go through the git binary: it speaks
// every transport (paths, file://, ssh://, git://, https://), finds
// credentials the way git users set them up (ssh agent and config, key
// files, credential helpers), which go-git does not, and walks packed
// history an order of magnitude faster than go-git does.

// tokenHelper answers git's credential questions from the environment, so
// a token in META_GIT_TOKEN authenticates https remotes without ever
// appearing in a command line or a file.
const tokenHelper = `!f() { test "$1" = get || exit 0; echo "username=${META_GIT_USERNAME:-meta}"; echo "password=${META_GIT_TOKEN}"; }; f`

// command is every git process meta starts: in dir, never asking on a
// terminal that is not there, with messages in English so they can be
// matched, dying with meta, and with META_GIT_TOKEN as its credentials
// when set.
func command(ctx context.Context, dir string, args ...string) *exec.Cmd {
	if os.Getenv("META_GIT_TOKEN") != "" {
		// The empty helper clears the user's helpers for this call: the
		// token in the environment is what they asked meta to use.
		args = append([]string{"-c", "credential.helper=", "-c", "credential.helper=" + tokenHelper}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	dieWithParent(cmd)
	cmd.Env = append(gitEnviron(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	return cmd
}

// localEnv are the variables that point git at another repository than
// the one in its working directory (`git rev-parse --local-env-vars`): a
// git hook that runs meta has GIT_DIR set, for one. meta's in-process
// reads and writes ignore them, so its git processes must too, or they
// would fetch into and push from another repository than the log.
var localEnv = map[string]bool{
	"GIT_ALTERNATE_OBJECT_DIRECTORIES": true, "GIT_CONFIG": true, "GIT_CONFIG_PARAMETERS": true,
	"GIT_CONFIG_COUNT": true, "GIT_OBJECT_DIRECTORY": true, "GIT_DIR": true, "GIT_WORK_TREE": true,
	"GIT_IMPLICIT_WORK_TREE": true, "GIT_GRAFT_FILE": true, "GIT_INDEX_FILE": true,
	"GIT_NO_REPLACE_OBJECTS": true, "GIT_REPLACE_REF_BASE": true, "GIT_PREFIX": true,
	"GIT_INTERNAL_SUPER_PREFIX": true, "GIT_SHALLOW_FILE": true, "GIT_COMMON_DIR": true,
}

// gitEnviron is meta's environment without localEnv, and without the
// GIT_CONFIG_KEY_n/VALUE_n pairs that GIT_CONFIG_COUNT counts.
func gitEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if localEnv[k] || strings.HasPrefix(k, "GIT_CONFIG_KEY_") || strings.HasPrefix(k, "GIT_CONFIG_VALUE_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// runGit runs git in dir and returns its standard output.
func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	return runGitInput(ctx, dir, "", args...)
}

// runGitInput runs git in dir with input as its standard input and returns
// its standard output.
func runGitInput(ctx context.Context, dir, input string, args ...string) (string, error) {
	cmd := command(ctx, dir, args...)
	if input != "" {
		cmd.Stdin = strings.NewReader(input)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = err.Error()
		}
		return out.String(), &GitError{Args: args, Stderr: msg, Err: err}
	}
	return out.String(), nil
}

// git runs the git binary in the work tree and returns its standard output.
func (r *Repo) git(ctx context.Context, args ...string) (string, error) {
	return runGit(ctx, r.root, args...)
}

// GitError is a failed git command and what it said, whole.
type GitError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *GitError) Error() string {
	return fmt.Sprintf("git %s: %s", strings.Join(e.Args, " "), oneLine(e.Stderr, maxGitError))
}

// maxGitError bounds how much of what git said an error carries: all of it,
// bar a runaway.
const maxGitError = 4000

// Unwrap lets callers reach the process error.
func (e *GitError) Unwrap() error { return e.Err }

// oneLine joins what git printed, every line of it, into one, at most max
// bytes (the last ones, where git says what failed).
func oneLine(s string, max int) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	out := strings.Join(lines, "; ")
	if len(out) > max {
		out = "..." + strings.ToValidUTF8(out[len(out)-max:], "")
	}
	return out
}
