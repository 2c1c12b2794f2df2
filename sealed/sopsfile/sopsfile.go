// Package sopsfile encrypts and decrypts env files with sops and age, in
// exactly the dotenv layout the sops CLI writes, so that an operator can
// always fall back to `sops decrypt`. It is linked only into meta-seal; see
// package sealed for why.
package sopsfile

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	"github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/logging"
	sopsdotenv "github.com/getsops/sops/v3/stores/dotenv"
	"github.com/getsops/sops/v3/version"
	"github.com/sirupsen/logrus"

	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
)

func init() {
	// sops logs a comment it cannot decrypt, in clear, at warning level:
	// nothing from a file may reach a log.
	logging.SetLevel(logrus.PanicLevel)
}

// Serve answers one request; it is meta-seal's whole job. A request of
// another protocol than sealed.Protocol gets a CodeProtocol error and
// nothing else: its fields may not mean what this build reads them as.
func Serve(req sealed.Request) sealed.Response {
	if req.Protocol != sealed.Protocol {
		return sealed.Response{Protocol: sealed.Protocol, Error: sealed.RequestVersionError(req.Protocol)}
	}
	resp := serve(req)
	resp.Protocol = sealed.Protocol
	return resp
}

func serve(req sealed.Request) sealed.Response {
	var ids sopsage.ParsedIdentities
	var yours []string
	needID := false
	for _, op := range req.Ops {
		needID = needID || op.Open != nil
	}
	if needID {
		var err error
		if ids, yours, err = parseIdentities(req.Identity); err != nil {
			return sealed.Response{Error: &sealed.Error{Code: sealed.CodeNoIdentity, Message: err.Error()}}
		}
	}
	resp := sealed.Response{Results: make([]sealed.Result, len(req.Ops))}
	for i, op := range req.Ops {
		switch {
		case op.Open != nil:
			f, err := Open(op.Open, ids)
			if err != nil {
				resp.Results[i].Error = toError(err)
				if errors.Is(err, sealed.ErrNotRecipient) {
					resp.Results[i].Error.Yours = yours
				}
				continue
			}
			resp.Results[i].File = &f
		case op.Seal != nil:
			data, err := Seal(*op.Seal, op.Recipients, time.Now())
			if err != nil {
				resp.Results[i].Error = toError(err)
				continue
			}
			resp.Results[i].Sealed = data
		default:
			resp.Results[i].Error = &sealed.Error{Code: sealed.CodeOther, Message: "empty request"}
		}
	}
	return resp
}

func toError(err error) *sealed.Error {
	for code, sentinel := range map[string]error{
		sealed.CodeNotRecipient: sealed.ErrNotRecipient,
		sealed.CodeTampered:     sealed.ErrTampered,
		sealed.CodeNotSealed:    sealed.ErrNotSealed,
		sealed.CodeRecipient:    sealed.ErrRecipient,
	} {
		if errors.Is(err, sentinel) {
			// The sentinel's own text is added back on meta's side.
			return &sealed.Error{Code: code, Message: strings.TrimPrefix(strings.TrimPrefix(err.Error(), sentinel.Error()), ": ")}
		}
	}
	return &sealed.Error{Code: sealed.CodeOther, Message: err.Error()}
}

// parseIdentities reads age secret keys, one per line, and the public
// recipients they answer to.
func parseIdentities(text string) (sopsage.ParsedIdentities, []string, error) {
	var ids sopsage.ParsedIdentities
	if err := ids.Import(text); err != nil {
		return nil, nil, fmt.Errorf("cannot parse the age identity: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil, errors.New("the identity holds no age secret key")
	}
	var yours []string
	for _, id := range ids {
		switch k := id.(type) {
		case *age.X25519Identity:
			yours = append(yours, k.Recipient().String())
		case *age.HybridIdentity:
			yours = append(yours, k.Recipient().String())
		}
	}
	return ids, yours, nil
}

func store() *sopsdotenv.Store { return sopsdotenv.NewStore(&config.DotenvStoreConfig{}) }

// Seal encrypts f to recipients (age1... strings) with a fresh data key, as
// `sops encrypt --age` would at time now.
func Seal(f dotenv.File, recipients []string, now time.Time) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, sealed.ErrNoOperators
	}
	var group sops.KeyGroup
	sorted := append([]string(nil), recipients...)
	sort.Strings(sorted)
	for _, r := range sorted {
		k, err := sopsage.MasterKeyFromRecipient(r)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", sealed.ErrRecipient, r, err)
		}
		group = append(group, k)
	}
	var branch sops.TreeBranch
	for _, l := range f.Lines {
		if l.Comment {
			branch = append(branch, sops.TreeItem{Key: sops.Comment{Value: l.Value}})
			continue
		}
		if err := dotenv.ValidKey(l.Key); err != nil {
			return nil, err
		}
		// As sops's own dotenv loader does, so that the CLI and meta
		// encrypt the same text to the same values.
		branch = append(branch, sops.TreeItem{Key: l.Key, Value: strings.ReplaceAll(l.Value, `\n`, "\n")})
	}
	tree := sops.Tree{
		Branches: sops.TreeBranches{branch},
		Metadata: sops.Metadata{
			KeyGroups:         []sops.KeyGroup{group},
			UnencryptedSuffix: sops.DefaultUnencryptedSuffix,
			Version:           version.Version,
		},
	}
	dataKey, errs := tree.GenerateDataKey()
	if len(errs) > 0 {
		return nil, fmt.Errorf("encrypt the data key: %v", errors.Join(errs...))
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	tree.Metadata.LastModified = now.UTC().Truncate(time.Second)
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("encrypt the MAC: %w", err)
	}
	return store().EmitEncryptedFile(tree)
}

// Open decrypts a sealed dotenv file with ids and checks its MAC.
func Open(data []byte, ids sopsage.ParsedIdentities) (dotenv.File, error) {
	if !sealed.IsSealed(data) {
		return dotenv.File{}, sealed.ErrNotSealed
	}
	tree, err := store().LoadEncryptedFile(data)
	if err != nil {
		return dotenv.File{}, fmt.Errorf("%w: %v", sealed.ErrNotSealed, err)
	}
	var dataKey []byte
	for _, group := range tree.Metadata.KeyGroups {
		for _, k := range group {
			ak, ok := k.(*sopsage.MasterKey)
			if !ok {
				continue
			}
			ids.ApplyToMasterKey(ak)
			if dk, err := ak.Decrypt(); err == nil {
				dataKey = dk
				break
			}
		}
	}
	if dataKey == nil {
		return dotenv.File{}, sealed.ErrNotRecipient
	}
	cipher := aes.NewCipher()
	mac, err := tree.Decrypt(dataKey, cipher)
	if err != nil {
		return dotenv.File{}, sealed.ErrTampered
	}
	want, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || want != mac {
		return dotenv.File{}, sealed.ErrTampered
	}
	var f dotenv.File
	for _, item := range tree.Branches[0] {
		if c, ok := item.Key.(sops.Comment); ok {
			f.Lines = append(f.Lines, dotenv.Line{Comment: true, Value: c.Value})
			continue
		}
		key, _ := item.Key.(string)
		value, ok := item.Value.(string)
		if !ok {
			value = fmt.Sprint(item.Value)
		}
		f.Lines = append(f.Lines, dotenv.Line{Key: key, Value: strings.ReplaceAll(value, "\n", `\n`)})
	}
	return f, nil
}
