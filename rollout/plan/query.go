package plan

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/projects"
)

// ErrBadQuery is a plan query parameter the caller got wrong.
var ErrBadQuery = errors.New("bad query")

// ParseQuery reads a plan's options from a URL query, as the hub's
// /v1/plan and its page take them: channel=recipe/channel plans only its
// followers, env_order=a,b the envs' order of waves, wave_size=N the most
// apps in a wave. A plan asked for over HTTP is made as no operator: every
// lease blocks. A bad channel is projects.ErrInvalidName, a bad wave_size
// ErrBadQuery.
func ParseQuery(q url.Values, now time.Time) (Options, error) {
	o := Options{Now: now}
	if q.Has("channel") {
		ref, err := projects.ParseChannelRef(q.Get("channel"))
		if err != nil {
			return o, err
		}
		o.Channel = &ref
	}
	if v := q.Get("env_order"); v != "" {
		o.EnvOrder = strings.Split(v, ",")
	}
	if v := q.Get("wave_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return o, fmt.Errorf("%w: wave_size must be a whole number, 0 for whole waves", ErrBadQuery)
		}
		o.WaveSize = n
	}
	return o, nil
}
