package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

// ErrSign: a commit could not be signed (ssh-agent gone, say), so it was
// not written.
var ErrSign = errors.New("could not sign the commit")

// SetSigner makes every commit the repository writes from now on signed
// by s, in git's own format (an SSH signature in the gpgsig header): the
// commits of Commit and Build, and those Replay makes anew. nil leaves
// them unsigned.
func (r *Repo) SetSigner(s signing.Signer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signer = s
}

// sign puts s's signature of c, over c as encoded without one, into c.
func sign(s signing.Signer, c *object.Commit) error {
	c.PGPSignature = ""
	o := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(o); err != nil {
		return err
	}
	rd, err := o.Reader()
	if err != nil {
		return err
	}
	payload, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	sig, err := s.Sign(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSign, err)
	}
	c.PGPSignature = string(sig)
	return nil
}

// SetConfig sets key (section.name, or section.subsection.name) to value
// in the repository's own git config (git config KEY VALUE), unless it
// says so already.
func (r *Repo) SetConfig(ctx context.Context, key, value string) error {
	first, last := strings.Index(key, "."), strings.LastIndex(key, ".")
	if first <= 0 || last == len(key)-1 {
		return fmt.Errorf("git config %q: want section.name or section.subsection.name", key)
	}
	if data, err := os.ReadFile(filepath.Join(r.gitDir, "config")); err == nil {
		cfg := gitconfig.NewConfig()
		if cfg.Unmarshal(data) == nil {
			s := cfg.Raw.Section(key[:first])
			opts := s.Options
			if first != last {
				opts = s.Subsection(key[first+1 : last]).Options
			}
			if opts.Get(key[last+1:]) == value {
				return nil
			}
		}
	}
	_, err := r.git(ctx, "config", key, value)
	return err
}
