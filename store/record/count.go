package record

import "strconv"

// Count says n of a thing in a message the way a person would: "1 event",
// "2 events", "0 events". noun is the singular; every noun meta counts
// takes an s.
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
