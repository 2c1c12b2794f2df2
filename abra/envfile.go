package abra

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
	"github.com/spf13/afero"
)

// EnvFile is one app's env file in abra's directory:
// $ABRA_DIR/servers/<server>/<domain>.env.
type EnvFile struct {
	Path   string
	Server string
	Domain string
}

// EnvFiles lists the env files under abraDir, for one domain or (domain
// "") all of them, sorted by path. A domain that no file name can hold
// (one with a path separator or a glob character) has none.
func EnvFiles(abraDir, domain string) ([]EnvFile, error) {
	if strings.ContainsAny(domain, `/\*?[`) {
		return nil, nil
	}
	pattern := "*.env"
	if domain != "" {
		pattern = domain + ".env"
	}
	paths, err := filepath.Glob(filepath.Join(abraDir, "servers", "*", pattern))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	out := make([]EnvFile, 0, len(paths))
	for _, p := range paths {
		out = append(out, EnvFile{Path: p, Server: filepath.Base(filepath.Dir(p)), Domain: strings.TrimSuffix(filepath.Base(p), ".env")})
	}
	return out, nil
}

// ServerOf is the abra server whose env file names the app at domain: ""
// when abra has none, or several (then where the app is is not abra's to
// say). An app's first event goes where meta.yaml puts that server.
func ServerOf(abraDir, domain string) string {
	files, err := EnvFiles(abraDir, domain)
	if err != nil || len(files) != 1 {
		return ""
	}
	return files[0].Server
}

// Recipe reads the recipe line of an env file, RECIPE= or the older TYPE=,
// which abra rewrites to "name:version" when it deploys. version is empty
// when the line names no version.
func Recipe(data []byte) (recipe, version string, ok bool) {
	for _, kv := range assignments(data) {
		if kv[0] == "RECIPE" || kv[0] == "TYPE" {
			recipe, version, _ = strings.Cut(kv[1], ":")
			return recipe, version, recipe != ""
		}
	}
	return "", "", false
}

// Secret is a secret an env file declares, by the name abra gives it.
type Secret struct{ Name, Version string }

// Secrets are the secrets an env file declares: SECRET_DB_PASSWORD_VERSION=v1
// declares db_password at v1.
func Secrets(data []byte) []Secret {
	var out []Secret
	for _, kv := range assignments(data) {
		name, ok := strings.CutPrefix(kv[0], "SECRET_")
		if name, ok2 := strings.CutSuffix(name, "_VERSION"); ok && ok2 && name != "" {
			out = append(out, Secret{Name: strings.ToLower(name), Version: kv[1]})
		}
	}
	return out
}

// assignments are the KEY=value lines of an env file, each value as abra
// reads it (dotenv.ValueOf: unquoted, without a trailing comment), or as
// written where abra could not read it.
func assignments(data []byte) [][2]string {
	var out [][2]string
	above := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if read, err := dotenv.ValueOf(v, above); err == nil {
			v = read
		} else {
			v = strings.TrimSpace(v)
		}
		above[k] = v
		out = append(out, [2]string{k, v})
	}
	return out
}

// StampKey is the env file key Co-op Cloud's Resolution 013 reserves for the
// version the operator log says is deployed.
const StampKey = dotenv.SyncVersionKey

// stampComment marks the line meta writes and owns.
const stampComment = "# managed by meta"

// Stamp returns data with StampKey set to version under a "# managed by
// meta" comment, at the end, in place of any earlier stamp.
func Stamp(data []byte, version string) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	var b strings.Builder
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, StampKey+"=") {
			continue
		}
		if t == stampComment && i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), StampKey+"=") {
			continue
		}
		b.WriteString(l)
	}
	out := b.String()
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return []byte(out + stampComment + "\n" + StampKey + "=" + version + "\n")
}

// StampFile writes the stamp into the env file at path, replaced whole or
// not at all, keeping the file's mode.
func StampFile(path, version string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stamp %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("stamp %s: %w", path, err)
	}
	if err := atomicfile.Write(afero.NewOsFs(), path, Stamp(data, version), fi.Mode().Perm()); err != nil {
		return fmt.Errorf("stamp %s: %w", path, err)
	}
	return nil
}

// maxStackName is how long a stack name abra derives from a domain may be.
const maxStackName = 45

// StackName is the Docker stack abra deploys the app at domain as: the
// domain with dots as underscores, cut to 45 characters, unless the env
// file's STACK_NAME says otherwise.
func StackName(domain string, envFile []byte) string {
	for _, kv := range assignments(envFile) {
		if kv[0] == "STACK_NAME" && kv[1] != "" {
			return kv[1]
		}
	}
	name := strings.ReplaceAll(domain, ".", "_")
	if len(name) > maxStackName {
		name = name[:maxStackName]
	}
	return name
}

// ReadFile reads an env file, or returns nil when there is none.
func ReadFile(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return data
}
