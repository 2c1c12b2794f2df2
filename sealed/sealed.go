// Package sealed keeps apps' env files in the log repository as
// sops-encrypted dotenv, encrypted to the age keys of the operators allowed
// to read them, and records every change as an env event that names keys,
// never values.
//
// The encryption itself runs in a helper process, meta-seal, which links
// sops. Linking sops into meta would add its cloud key services' start-up
// work (about 12 ms measured) to every meta command, including the `meta
// head` an abra wrapper runs before each deploy; see the README's
// performance section.
package sealed

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
)

// Errors callers branch on.
var (
	// ErrNoIdentity: no age identity was given or found.
	ErrNoIdentity = errors.New("no age identity")
	// ErrNotRecipient: the identity is not one the file is encrypted to.
	ErrNotRecipient = errors.New("your age identity cannot decrypt it")
	// ErrTampered: the file does not match its MAC, or a value does not
	// decrypt: it was changed outside sops.
	ErrTampered = errors.New("integrity check failed (MAC mismatch): the file was changed outside sops")
	// ErrNotSealed: the file is not a sops-encrypted dotenv file.
	ErrNotSealed = errors.New("not a sops-encrypted dotenv file")
	// ErrRecipient: an operator's age recipient cannot be parsed.
	ErrRecipient = errors.New("bad age recipient")
	// ErrNoHelper: meta-seal, which does the encryption, is not installed.
	ErrNoHelper = errors.New("meta-seal is not installed")
	// ErrHelperVersion: meta-seal is from another build than meta and
	// speaks another protocol version (see Protocol).
	ErrHelperVersion = errors.New("meta-seal is from another build than meta")
	// ErrHelperFailed: the program run as meta-seal failed or did not
	// answer as meta-seal does: it is not meta's meta-seal, or broken.
	ErrHelperFailed = errors.New("meta-seal failed")
	// ErrNoOperators: no operator may read the env, so it cannot be sealed.
	ErrNoOperators = errors.New("no operators to encrypt to")
)

// Digest names one exact version of a sealed file: "sha256:<hex>" of its
// bytes. Env events and deploys record it.
func Digest(file []byte) string {
	sum := sha256.Sum256(file)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ShortDigest is a digest cut for people to read.
func ShortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// Recipients lists the age recipients a sealed dotenv file is encrypted to,
// read from its sops metadata without decrypting anything. It returns nil
// for a file with no such metadata.
func Recipients(file []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		// sops flattens its metadata: sops_age__list_<n>__map_recipient=age1...
		if ok && strings.HasPrefix(key, "sops_age__list_") && strings.HasSuffix(key, "__map_recipient") {
			out = append(out, strings.TrimSpace(value))
		}
	}
	sort.Strings(out)
	return out
}

// IsSealed says whether data looks like a sops-encrypted dotenv file.
func IsSealed(data []byte) bool {
	return bytes.Contains(data, []byte("\nsops_mac=")) || bytes.HasPrefix(data, []byte("sops_mac="))
}

// ClearKeys lists the keys of a sealed dotenv file whose values are not
// encrypted (sops leaves keys ending in _unencrypted in clear): values that
// are readable by anyone who can read the repository.
func ClearKeys(file []byte) []string {
	var out []string
	for _, line := range strings.Split(string(file), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") || strings.HasPrefix(key, "sops_") {
			continue
		}
		// sops leaves an empty value as it is (KEY=, common in abra's
		// env files): there is nothing in it to read.
		if value != "" && !strings.HasPrefix(value, "ENC[") {
			out = append(out, key)
		}
	}
	return out
}
