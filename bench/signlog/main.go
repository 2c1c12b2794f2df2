// Command signlog builds a meta log whose every commit is signed, for
// bench/verify.sh: signlog DIR EVENTS KEYFILE. The log's meta.yaml lists
// one operator, bench, with KEYFILE's public key, and requires signatures
// from its first commit; the history is bench/fixture's (10 apps), every
// commit then signed with KEYFILE in git's SSH format, as `git commit -S`
// would, and repacked.
package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"git.coopcloud.tech/coop-cloud/meta/bench/fixture"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/signing"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: signlog DIR EVENTS KEYFILE")
		os.Exit(2)
	}
	events, err := strconv.Atoi(os.Args[2])
	if err != nil || events < 10 {
		fmt.Fprintln(os.Stderr, "signlog: EVENTS is a whole number of 10 or more")
		os.Exit(2)
	}
	if err := run(os.Args[1], events, os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "signlog:", err)
		os.Exit(1)
	}
}

func run(dir string, events int, keyFile string) error {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	key, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return fmt.Errorf("%s: %w", keyFile, err)
	}
	signer := signing.NewSigner(key)
	cfg := config.Config{Version: 2, Project: "bench", Env: "prod", Signatures: config.SignaturesRequired,
		Operators: []config.Operator{{Name: "bench", Age: "age1" + strings.Repeat("q", 58), SSH: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey())))}}}
	if err := fixture.BuildWith(dir, 10, events/10, cfg); err != nil {
		return err
	}
	list, err := git(dir, "rev-list", "--reverse", "main")
	if err != nil {
		return err
	}
	cat := exec.Command("git", "cat-file", "--batch")
	cat.Dir = dir
	in, _ := cat.StdinPipe()
	outPipe, _ := cat.StdoutPipe()
	if err := cat.Start(); err != nil {
		return err
	}
	out := bufio.NewReader(outPipe)
	renamed := map[string]string{}
	var tip string
	for _, old := range strings.Fields(list) {
		fmt.Fprintln(in, old)
		header, err := out.ReadString('\n')
		if err != nil {
			return err
		}
		f := strings.Fields(header)
		size, _ := strconv.Atoi(f[2])
		raw := make([]byte, size+1)
		if _, err := io.ReadFull(out, raw); err != nil {
			return err
		}
		payload := raw[:size]
		if p := bytes.Index(payload, []byte("\nparent ")); p >= 0 {
			oldParent := string(payload[p+8 : p+48])
			payload = bytes.Replace(payload, []byte("parent "+oldParent), []byte("parent "+renamed[oldParent]), 1)
		}
		sig, err := signer.Sign(payload)
		if err != nil {
			return err
		}
		head, body, _ := bytes.Cut(payload, []byte("\n\n"))
		lines := strings.Split(strings.TrimSuffix(string(sig), "\n"), "\n")
		obj := string(head) + "\ngpgsig " + strings.Join(lines, "\n ") + "\n\n" + string(body)
		id, err := writeLoose(dir, []byte(obj))
		if err != nil {
			return err
		}
		renamed[old], tip = id, id
	}
	in.Close()
	cat.Wait()
	if _, err := git(dir, "update-ref", "refs/heads/main", tip); err != nil {
		return err
	}
	if _, err := git(dir, "repack", "-adq"); err != nil {
		return err
	}
	_, err = git(dir, "prune")
	return err
}

// writeLoose writes a commit object as git stores it loose.
func writeLoose(dir string, content []byte) (string, error) {
	full := append([]byte(fmt.Sprintf("commit %d\x00", len(content))), content...)
	sum := sha1.Sum(full)
	id := hex.EncodeToString(sum[:])
	path := filepath.Join(dir, ".git", "objects", id[:2], id[2:])
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	var b bytes.Buffer
	z := zlib.NewWriter(&b)
	z.Write(full)
	z.Close()
	return id, os.WriteFile(path, b.Bytes(), 0o444)
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %v: %w", args, err)
	}
	return string(out), nil
}
