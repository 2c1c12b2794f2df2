package record

import "strings"

// RedactCommand returns argv with every secret value it can recognise
// replaced by Redacted, so that a command line that is not abra's can be
// recorded (abra's follow abra's grammar: abra.Redact; the store chooses):
//   - VALUE in KEY=VALUE arguments of `env set` (meta's own);
//   - the value of flags whose name says password, secret, token or key,
//     as --flag=VALUE or --flag VALUE.
//
// Callers with other ways of taking secrets must redact them before.
func RedactCommand(argv []string) []string {
	if len(argv) == 0 {
		return argv
	}
	out := make([]string, len(argv))
	copy(out, argv)
	envSet := false
	for i, a := range out {
		if i > 0 && a == "set" && out[i-1] == "env" {
			envSet = true
		}
	}
	for i := 0; i < len(out); i++ {
		a := out[i]
		if name, _, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") && secretFlag(name) {
			out[i] = name + "=" + Redacted
			continue
		}
		if strings.HasPrefix(a, "-") && secretFlag(a) && i+1 < len(out) {
			out[i+1] = Redacted
			i++
			continue
		}
		if envSet && !strings.HasPrefix(a, "-") {
			if k, _, ok := strings.Cut(a, "="); ok {
				out[i] = k + "=" + Redacted
			}
		}
	}
	return out
}

// secretFlag says a flag's name announces a secret value.
func secretFlag(flag string) bool {
	name := strings.ToLower(strings.TrimLeft(flag, "-"))
	if name == "secrets" {
		return false // abra app new --secrets: a switch, it takes no value
	}
	if name == "" || strings.Contains(name, "file") || strings.Contains(name, "version") || strings.Contains(name, "length") {
		return false // names a file or describes the secret; not the value
	}
	for _, w := range []string{"password", "passwd", "secret", "token", "apikey", "api-key", "private-key"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}
