package sealed

import "testing"

// sops leaves an empty value as it is; it holds nothing to read, so it is
// not a value in clear. A non-empty one is.
func TestClearKeysLeavesEmptyValuesOut(t *testing.T) {
	file := []byte("EMPTY=\nSECRET=ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\nPLAIN=oops\nsops_mac=ENC[x]\n")
	if got := ClearKeys(file); len(got) != 1 || got[0] != "PLAIN" {
		t.Fatalf("ClearKeys = %q, want [PLAIN]", got)
	}
}
