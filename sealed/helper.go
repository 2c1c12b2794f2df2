package sealed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

// HelperName is the helper's executable, looked up next to meta's own
// executable first, then on PATH.
const HelperName = "meta-seal"

// Request is what meta sends meta-seal on stdin: the protocol meta speaks,
// one identity for all opens, and the files to open or seal.
type Request struct {
	// Protocol is the version meta speaks; Run sets it to Protocol.
	Protocol int    `json:"protocol"`
	Identity string `json:"identity,omitempty"`
	Ops      []Op   `json:"ops"`
}

// Op is one file to open (decrypt) or seal (encrypt to Recipients).
type Op struct {
	Open       []byte       `json:"open,omitempty"`
	Seal       *dotenv.File `json:"seal,omitempty"`
	Recipients []string     `json:"recipients,omitempty"`
}

// Response is meta-seal's answer on stdout: the protocol it speaks, and one
// Result per Op, in order.
type Response struct {
	// Protocol is the version meta-seal speaks; one built before
	// versioning leaves it out, which reads as 0.
	Protocol int      `json:"protocol"`
	Results  []Result `json:"results"`
	// Error is set when the request as a whole failed (a bad identity, a
	// request of another protocol).
	Error *Error `json:"error,omitempty"`
}

// Result is an opened file's content, a sealed file's bytes, or an error.
type Result struct {
	File   *dotenv.File `json:"file,omitempty"`
	Sealed []byte       `json:"sealed,omitempty"`
	Error  *Error       `json:"error,omitempty"`
}

// Error travels from meta-seal back to meta, where Code becomes one of the
// sentinel errors. It never holds a value from a file.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Yours are the public recipients of the identity that was tried.
	Yours []string `json:"yours,omitempty"`
}

// Codes of Error.
const (
	CodeNoIdentity   = "no-identity"
	CodeNotRecipient = "not-recipient"
	CodeTampered     = "tampered"
	CodeNotSealed    = "not-sealed"
	CodeRecipient    = "bad-recipient"
	// CodeProtocol refuses a request of another protocol version, as a
	// whole: meta-seal did nothing with it.
	CodeProtocol = "protocol"
	CodeOther    = "error"
)

var codes = map[string]error{
	CodeNoIdentity:   ErrNoIdentity,
	CodeNotRecipient: ErrNotRecipient,
	CodeTampered:     ErrTampered,
	CodeNotSealed:    ErrNotSealed,
	CodeRecipient:    ErrRecipient,
	CodeProtocol:     ErrHelperVersion,
}

// Err turns e back into an error that matches its sentinel.
func (e *Error) Err() error {
	if e == nil {
		return nil
	}
	if s, ok := codes[e.Code]; ok {
		if e.Message == "" {
			return s
		}
		return fmt.Errorf("%w: %s", s, e.Message)
	}
	return errors.New(e.Message)
}

// Helper runs meta-seal.
type Helper struct {
	Path string
}

// FindHelper locates meta-seal: beside the running meta, else on PATH.
func FindHelper() (Helper, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), HelperName)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return Helper{Path: p}, nil
		}
	}
	if p, err := exec.LookPath(HelperName); err == nil {
		return Helper{Path: p}, nil
	}
	return Helper{}, fmt.Errorf("%w: env commands need it beside meta or on PATH; install it with %s", ErrNoHelper, installHelper())
}

// maxStderr bounds how much of a failing helper's stderr an error quotes.
const maxStderr = 1000

// Run sends req, as protocol Protocol, to meta-seal and returns its
// response, or an error matching ErrHelperVersion for a meta-seal of
// another protocol and ErrHelperFailed for one that does not answer as
// meta-seal does. Keys and values travel only through the pipes, never
// through arguments or the environment, and no error quotes the answer:
// whatever answered may have echoed them.
func (h Helper) Run(ctx context.Context, req Request) (Response, error) {
	req.Protocol = Protocol
	in, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s: encode the request: %w", HelperName, err)
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			// Stopped, not broken: no advice to reinstall.
			return Response{}, fmt.Errorf("%s %s: %w", HelperName, h.Path, ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > maxStderr {
			msg = strings.ToValidUTF8(msg[:maxStderr], "") + "..."
		}
		if msg != "" {
			msg = ": " + msg
		}
		return Response{}, h.failed(fmt.Sprintf("%v%s", err, msg))
	}
	if len(bytes.TrimSpace(out.Bytes())) == 0 {
		return Response{}, h.failed("it answered nothing")
	}
	var resp Response
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		return Response{}, h.failed("it answered something other than meta-seal's JSON")
	}
	// The version first: what the rest means depends on it.
	if resp.Protocol != Protocol {
		return Response{}, h.versionError(resp.Protocol)
	}
	if resp.Error != nil && resp.Error.Code == CodeProtocol {
		// Not sent by a meta-seal of this protocol to a meta of it, but
		// its fix is the same.
		return Response{}, fmt.Errorf("%w: %s refused the request (%s); install the matching one with %s", ErrHelperVersion, h.Path, resp.Error.Message, installHelper())
	}
	if err := resp.Error.Err(); err != nil {
		return Response{}, err
	}
	if len(resp.Results) != len(req.Ops) {
		return Response{}, fmt.Errorf("%w: %s gave %d answers to %d requests", ErrHelperFailed, h.Path, len(resp.Results), len(req.Ops))
	}
	return resp, nil
}

// failed is the error for a helper that did not answer as meta-seal does:
// most likely not meta's meta-seal, so it says how to install that.
func (h Helper) failed(what string) error {
	return fmt.Errorf("%w: %s: %s; if it is not meta's meta-seal, install that with %s", ErrHelperFailed, h.Path, what, installHelper())
}

// Open decrypts sealed files with id. Each file's error, if any, is
// returned in errs at its index; err is for the request as a whole.
func (h Helper) Open(ctx context.Context, id Identity, files ...[]byte) (out []dotenv.File, errs []error, err error) {
	req := Request{Identity: id.Text}
	for _, f := range files {
		req.Ops = append(req.Ops, Op{Open: f})
	}
	resp, err := h.Run(ctx, req)
	if err != nil {
		if errors.Is(err, ErrNoIdentity) {
			err = fmt.Errorf("%s: %w", id.Source, err)
		}
		return nil, nil, err
	}
	out, errs = make([]dotenv.File, len(files)), make([]error, len(files))
	for i, r := range resp.Results {
		if r.Error != nil {
			errs[i] = r.Error.Err()
			if r.Error.Code == CodeNotRecipient {
				errs[i] = &NotRecipientError{Recipients: Recipients(files[i]), Yours: r.Error.Yours, Source: id.Source}
			}
			continue
		}
		if r.File == nil {
			// An answer without a file or an error is no answer: taking it
			// for an empty env would write one over the real one.
			return nil, nil, h.failed("it opened a file into nothing")
		}
		out[i] = *r.File
	}
	return out, errs, nil
}

// Seal encrypts each file to its recipients, with a fresh data key each.
func (h Helper) Seal(ctx context.Context, files []dotenv.File, recipients [][]string) ([][]byte, error) {
	req := Request{}
	for i := range files {
		req.Ops = append(req.Ops, Op{Seal: &files[i], Recipients: recipients[i]})
	}
	resp, err := h.Run(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(files))
	for i, r := range resp.Results {
		if err := r.Error.Err(); err != nil {
			return nil, err
		}
		// What is committed must be what sops would have written: a
		// helper answering anything else is refused before it is.
		if !IsSealed(r.Sealed) || len(ClearKeys(r.Sealed)) > 0 {
			return nil, h.failed("it answered a file that is not sealed")
		}
		out[i] = r.Sealed
	}
	return out, nil
}

// NotRecipientError says who a file is encrypted to when the operator's
// identity is not among them; callers add operator names.
type NotRecipientError struct {
	Recipients []string
	Yours      []string
	Source     string
}

func (e *NotRecipientError) Error() string {
	return fmt.Sprintf("%v: it is encrypted to %s; your identity (%s) is %s", ErrNotRecipient, strings.Join(e.Recipients, ", "), e.Source, strings.Join(e.Yours, ", "))
}

// Unwrap lets errors.Is match ErrNotRecipient.
func (e *NotRecipientError) Unwrap() error { return ErrNotRecipient }
