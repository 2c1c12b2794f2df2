package hub

import (
	"testing"
	"time"
)

func TestSmooth(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	const window = 30 * time.Second
	for _, tt := range []struct {
		name    string
		looks   []look
		running int
		hold    bool
		again   time.Time
	}{
		{"a healthy start holds while the task starts", []look{
			{at: at(0), desired: 1, starting: 1},
		}, 0, true, at(30)},
		{"a healthy start is recorded once it runs, the start not counted", []look{
			{at: at(0), desired: 1, starting: 1},
			{at: at(2), desired: 1, running: 1},
		}, 1, false, time.Time{}},
		{"a scale-up holds until the new tasks run", []look{
			{at: at(0), desired: 1, running: 1},
			{at: at(5), desired: 3, running: 1, starting: 2},
		}, 1, true, at(35)},
		{"a start-first update with the old task serving does not hold", []look{
			{at: at(0), desired: 1, running: 1},
			{at: at(1), desired: 1, running: 1, starting: 1},
		}, 1, false, time.Time{}},
		{"a start stuck beyond the window is recorded", []look{
			{at: at(0), desired: 1, starting: 1},
			{at: at(20), desired: 1, starting: 1},
			{at: at(31), desired: 1, starting: 1},
		}, 0, false, time.Time{}},
		{"a crash after a healthy deploy is recorded at once", []look{
			{at: at(0), desired: 1, running: 1},
			{at: at(40), desired: 1, running: 0, starting: 1, failedAt: at(40)},
		}, 0, false, time.Time{}},
		{"a crash loop's restarted task running for a moment records no recovery", []look{
			{at: at(0), desired: 1, running: 1},
			{at: at(40), desired: 1, running: 0, starting: 1, failedAt: at(40)},
			{at: at(46), desired: 1, running: 1, failedAt: at(40)},
		}, 0, false, at(70)},
		{"a crash loop: the next crash keeps it down", []look{
			{at: at(40), desired: 1, running: 0, starting: 1, failedAt: at(40)},
			{at: at(46), desired: 1, running: 1, failedAt: at(40)},
			{at: at(48), desired: 1, running: 0, starting: 1, failedAt: at(48)},
			{at: at(54), desired: 1, running: 1, failedAt: at(48)},
		}, 0, false, at(78)},
		{"a recovery not yet held for the window", []look{
			{at: at(0), desired: 2, running: 1, failedAt: at(0)},
			{at: at(10), desired: 2, running: 2, failedAt: at(0)},
		}, 1, false, at(30)},
		{"a recovery held for the window is recorded", []look{
			{at: at(0), desired: 2, running: 1, failedAt: at(0)},
			{at: at(10), desired: 2, running: 2, failedAt: at(0)},
			{at: at(31), desired: 2, running: 2, failedAt: at(0)},
		}, 2, false, time.Time{}},
		{"a scale-down is recorded at once", []look{
			{at: at(0), desired: 3, running: 3},
			{at: at(1), desired: 1, running: 1},
		}, 1, false, time.Time{}},
		{"a scale to 0 is recorded at once", []look{
			{at: at(0), desired: 1, running: 1},
			{at: at(1), desired: 0, running: 0},
		}, 0, false, time.Time{}},
		{"a restart after a failure does not hold", []look{
			{at: at(0), desired: 1, running: 1},
			{at: at(10), desired: 1, starting: 1, failedAt: at(9)},
		}, 0, false, time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			running, hold, again := smooth(tt.looks, window)
			if running != tt.running || hold != tt.hold || !again.Equal(tt.again) {
				t.Fatalf("smooth = %d, hold %t, again %s; want %d, hold %t, again %s", running, hold, again, tt.running, tt.hold, tt.again)
			}
		})
	}
}
