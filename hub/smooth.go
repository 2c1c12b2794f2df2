package hub

import "time"

// look is one look at one service of a stack, as smoothing needs it.
type look struct {
	at                         time.Time
	running, desired, starting int
	// failedAt is when the service's most recent task failed; zero if none.
	failedAt time.Time
}

// fresh says the service was only starting at l: tasks on their way to
// running and fewer running than wanted, with no task failed in the
// window before l. That is a deploy or a scale-up going its normal way,
// not yet an outage.
func (l look) fresh(window time.Duration) bool {
	return l.starting > 0 && l.running < l.desired && (l.failedAt.IsZero() || l.failedAt.Before(l.at.Add(-window)))
}

// smooth is the one rule for what the hub records of a service, so that a
// crash loop does not write an observation every few seconds: looks holds
// the looks at it, oldest first, the last one now. It records as running
// the fewest tasks running over the looks of the last window, so a drop is
// recorded at once and a recovery once it has held for the window. While
// the service is only starting fresh (see look.fresh) hold says record
// nothing yet, unless that has lasted beyond the window; looks that were
// only starting fresh count for nothing. again, when not zero, is when the
// answer would change with no new look (a recovery that will have held for
// the window, a start that will have lasted beyond it): look again then.
func smooth(looks []look, window time.Duration) (running int, hold bool, again time.Time) {
	if len(looks) == 0 {
		return 0, false, time.Time{}
	}
	now := looks[len(looks)-1]
	since := now.at.Add(-window)
	// The streak of fresh looks that ends now, and whether it began more
	// than a window ago.
	streak := now.at
	i := len(looks) - 1
	for ; i >= 0 && looks[i].fresh(window); i-- {
		streak = looks[i].at
	}
	if i < len(looks)-1 { // now is fresh
		if streak.After(since) {
			return now.running, true, streak.Add(window)
		}
	}
	running = now.running
	for _, l := range looks[:len(looks)-1] {
		if l.at.Before(since) || l.fresh(window) {
			continue
		}
		if l.running < running {
			running = l.running
		}
	}
	if running < now.running {
		// The oldest look that holds the count down leaves the window first;
		// look again when the last of them has.
		for _, l := range looks[:len(looks)-1] {
			if !l.at.Before(since) && !l.fresh(window) && l.running < now.running {
				again = l.at.Add(window)
			}
		}
	}
	return running, false, again
}
