package record

import (
	"strconv"
	"strings"
)

// Count says n of a thing in a message the way a person would: "1 event",
// "2 events", "0 events", "2 batches". noun is the singular; every noun
// meta counts takes an s, or es after ch, sh, s or x.
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	plural := noun + "s"
	for _, end := range []string{"ch", "sh", "s", "x"} {
		if strings.HasSuffix(noun, end) {
			plural = noun + "es"
		}
	}
	return strconv.Itoa(n) + " " + plural
}
