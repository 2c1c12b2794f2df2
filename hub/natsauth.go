package hub

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/afero"

	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/store/atomicfile"
)

// The embedded NATS server lets in three users, each known by an nkey (an
// ed25519 key pair; the server keeps only the public half): the hub, which
// may do anything, followers, who may read (FollowerPublish,
// FollowerSubscribe), and appenders, operators' meta handing appends to
// the hub's group commit (AppenderPublish). Their seeds (the private
// halves) are files in the hub's data directory, made on first start and
// kept, so that a follower's file stays good across restarts; delete them
// to change them.
const (
	HubSeedFile      = "hub.nk"
	FollowerSeedFile = "follower.nk"
	AppenderSeedFile = "appender.nk"
)

// AppenderPublish is every subject an appender may publish to: the
// hand-over of an append and the nudge. An appender writes to the log as
// any operator with push access does (the hub records what it hands over,
// authored by the operator it names), so its seed goes only to those who
// may push; it reads nothing on NATS but its own answers.
func AppenderPublish() []string {
	return []string{notify.AppendSubject, notify.SyncSubject}
}

// FollowerPublish is every subject a follower's credentials may publish
// to: the JetStream API calls that read the events stream through a
// durable consumer (create or update it, look it up, fetch, acknowledge),
// the two buckets a follower writes (its hold on its name, the events it
// parked), the account's JetStream info (meta doctor) and the nudge. Not
// meta.events.> (no events), not the stream's purge, delete or message
// delete, not the hub's bucket, not another stream.
func FollowerPublish() []string {
	subjects := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + notify.StreamName,
		"$JS.API.CONSUMER.CREATE." + notify.StreamName + ".>",
		"$JS.API.CONSUMER.INFO." + notify.StreamName + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + notify.StreamName + ".*",
		"$JS.ACK." + notify.StreamName + ".>",
		notify.SyncSubject,
	}
	for _, b := range []string{notify.LeaseBucket, notify.ParkedBucket} {
		stream := "KV_" + b
		subjects = append(subjects,
			"$KV."+b+".>",
			"$JS.API.STREAM.INFO."+stream,
			"$JS.API.STREAM.MSG.GET."+stream,
			"$JS.API.DIRECT.GET."+stream+".>",
			// Listing keys is a short-lived consumer of the bucket.
			"$JS.API.CONSUMER.CREATE."+stream+".>",
			"$JS.API.CONSUMER.DELETE."+stream+".>",
			"$JS.FC."+stream+".>",
		)
	}
	return subjects
}

// FollowerSubscribe is every subject a follower may subscribe to: the
// events as they are published, and the inboxes its requests are answered
// on.
func FollowerSubscribe() []string {
	return []string{notify.SubjectPrefix + ".>", "_INBOX.>"}
}

// natsKeys are the embedded server's two users.
type natsKeys struct {
	hub, follower, appender             nkeys.KeyPair
	hubFile, followerFile, appenderFile string
}

// loadKeys reads the two seeds in dir, making each that is missing.
func loadKeys(dir string) (*natsKeys, error) {
	k := &natsKeys{hubFile: filepath.Join(dir, HubSeedFile), followerFile: filepath.Join(dir, FollowerSeedFile), appenderFile: filepath.Join(dir, AppenderSeedFile)}
	var err error
	if k.hub, err = loadSeed(k.hubFile); err != nil {
		return nil, err
	}
	if k.follower, err = loadSeed(k.followerFile); err != nil {
		return nil, err
	}
	if k.appender, err = loadSeed(k.appenderFile); err != nil {
		return nil, err
	}
	return k, nil
}

// loadSeed reads an nkey user seed from path, or makes one and writes it
// there, readable by its owner only.
func loadSeed(path string) (nkeys.KeyPair, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		kp, err := nkeys.FromSeed(bytes.TrimSpace(data))
		if err != nil || !isUser(kp) {
			return nil, fmt.Errorf("embedded NATS: %s is not an nkey user seed (delete it, and the hub makes a new one)", path)
		}
		return kp, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: make a key: %w", err)
	}
	seed, _ := kp.Seed()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if err := atomicfile.Write(afero.NewOsFs(), path, append(seed, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	return kp, nil
}

func isUser(kp nkeys.KeyPair) bool {
	pub, err := kp.PublicKey()
	return err == nil && nkeys.IsValidPublicUserKey(pub)
}

// users are the server's users: the hub unrestricted, followers read-only,
// appenders only hand appends over.
func (k *natsKeys) users() []*server.NkeyUser {
	hub, _ := k.hub.PublicKey()
	follower, _ := k.follower.PublicKey()
	appender, _ := k.appender.PublicKey()
	return []*server.NkeyUser{
		{Nkey: hub},
		{Nkey: follower, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: FollowerPublish()},
			Subscribe: &server.SubjectPermission{Allow: FollowerSubscribe()},
		}},
		{Nkey: appender, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: AppenderPublish()},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}},
	}
}

// hubOption connects as the hub.
func (k *natsKeys) hubOption() nats.Option {
	pub, _ := k.hub.PublicKey()
	return nats.Nkey(pub, k.hub.Sign)
}
