package creds

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/nats-io/nkeys"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/seal"
)

// seedMode is the mode of every seed file; publicMode of auth.json and
// nats-server.conf, which hold public keys only.
const (
	seedMode   fs.FileMode = 0o600
	publicMode fs.FileMode = 0o644
	dirMode    fs.FileMode = 0o700
)

// Key is what Generate reports of one identity: public keys and file names,
// never a seed.
type Key struct {
	// Name is the node id, Orchestrator or Operator.
	Name string `json:"name"`
	// User is the nkey user public key.
	User string `json:"user"`
	// Curve is the public curve key; empty for the operator.
	Curve string `json:"curve,omitempty"`
	// Created is true when a seed file of this identity was made by this run.
	Created bool `json:"created"`
	// Files are the identity's seed files, relative to the directory.
	Files []string `json:"files"`
}

// Result is what Generate did.
type Result struct {
	// Dir is the credentials directory.
	Dir string `json:"dir"`
	// Keys are the operator, the orchestrator and the nodes (sorted by id).
	Keys []Key `json:"keys"`
	// Dropped are the nodes the previous auth.json had and this fleet has not:
	// their seed files stay, but the server no longer lets them in.
	Dropped []string `json:"dropped,omitempty"`
	// Set is the public half that was written to auth.json.
	Set *Set `json:"-"`
}

// Generate makes the credentials of the nodes (ids <site>.<role>) in dir: for
// each node an nkey user seed <node>.nk and a curve seed <node>.xk, plus
// orchestrator.nk, orchestrator.xk and operator.nk, all mode 0600; then it
// writes auth.json and nats-server.conf for exactly these identities. A seed
// file that exists is kept as it is (so running Generate again changes no key,
// and a new node gets new keys). It returns an error naming the node when an id
// is invalid, when an existing seed file holds the wrong kind of key
// (ErrWrongKeyKind; it is never overwritten) or when a file cannot be written.
func Generate(dir string, nodes []string) (*Result, error) {
	var errs []error
	ids := slices.Clone(nodes)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		if _, _, err := events.ParseNodeID(id); err != nil {
			errs = append(errs, fmt.Errorf("node %q: %w", id, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("generate credentials in %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("generate credentials: %w", err)
	}
	res := &Result{Dir: dir}
	// Best effort: an unreadable previous auth.json is rewritten from the seeds
	// below, only the list of dropped nodes is lost.
	if prev, err := Load(dir); err == nil {
		for _, id := range prev.NodeIDs() {
			if _, found := slices.BinarySearch(ids, id); !found {
				res.Dropped = append(res.Dropped, id)
			}
		}
	}

	set := &Set{Version: SetVersion, Nodes: make(map[string]Identity, len(ids))}
	k, err := ensureIdentity(dir, Operator, false)
	if err != nil {
		return nil, err
	}
	set.Operator = Identity{User: k.User}
	res.Keys = append(res.Keys, k)
	if k, err = ensureIdentity(dir, Orchestrator, true); err != nil {
		return nil, err
	}
	set.Orchestrator = Identity{User: k.User, Curve: k.Curve}
	res.Keys = append(res.Keys, k)
	for _, id := range ids {
		k, err := ensureIdentity(dir, id, true)
		if err != nil {
			return nil, err
		}
		set.Nodes[id] = Identity{User: k.User, Curve: k.Curve}
		res.Keys = append(res.Keys, k)
	}
	// Catches seed files copied from one identity to another: the server
	// could not tell those users apart.
	if err := set.Validate(); err != nil {
		return nil, fmt.Errorf("generate credentials in %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("generate credentials: encode %s: %w", AuthFile, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, AuthFile), append(data, '\n'), publicMode); err != nil {
		return nil, fmt.Errorf("generate credentials: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, ServerConfFile), set.ServerConf(), publicMode); err != nil {
		return nil, fmt.Errorf("generate credentials: %w", err)
	}
	res.Set = set
	return res, nil
}

// ensureIdentity makes or reads the seed files of name: name.nk and, when curve,
// name.xk.
func ensureIdentity(dir, name string, curve bool) (Key, error) {
	k := Key{Name: name, Files: []string{name + UserSeedExt}}
	pub, created, err := ensureSeed(filepath.Join(dir, name+UserSeedExt), userSeed)
	if err != nil {
		return Key{}, fmt.Errorf("credentials of %s: %w", name, err)
	}
	k.User, k.Created = pub, created
	if curve {
		k.Files = append(k.Files, name+CurveSeedExt)
		pub, created, err := ensureSeed(filepath.Join(dir, name+CurveSeedExt), curveSeed)
		if err != nil {
			return Key{}, fmt.Errorf("credentials of %s: %w", name, err)
		}
		k.Curve, k.Created = pub, k.Created || created
	}
	return k, nil
}

// keyKind is a kind of seed: how it is made, read and recognised.
type keyKind int

const (
	userSeed keyKind = iota
	curveSeed
)

func (k keyKind) String() string {
	if k == curveSeed {
		return "curve"
	}
	return "nkey user"
}

func (k keyKind) create() (nkeys.KeyPair, error) {
	if k == curveSeed {
		return seal.NewKey()
	}
	return nkeys.CreateUser()
}

func (k keyKind) parse(path string, data []byte) (nkeys.KeyPair, error) {
	if k == curveSeed {
		return seal.LoadKey(path)
	}
	return nkeys.ParseDecoratedNKey(data)
}

func (k keyKind) valid(public string) bool {
	if k == curveSeed {
		return nkeys.IsValidPublicCurveKey(public)
	}
	return nkeys.IsValidPublicUserKey(public)
}

// ensureSeed returns the public key of the seed at path, making the seed (mode
// 0600, created exclusively) when the file does not exist.
func ensureSeed(path string, kind keyKind) (public string, created bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createSeed(path, kind)
	case err != nil:
		return "", false, fmt.Errorf("read %s seed: %w", kind, err)
	}
	defer wipe(data)
	kp, err := kind.parse(path, data)
	if err != nil {
		return "", false, fmt.Errorf("%w: %s is not a %s seed: %w", ErrWrongKeyKind, path, kind, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !kind.valid(pub) {
		return "", false, fmt.Errorf("%w: %s is not a %s seed", ErrWrongKeyKind, path, kind)
	}
	// A kept seed may have been copied in with a looser mode.
	if err := os.Chmod(path, seedMode); err != nil {
		return "", false, fmt.Errorf("restrict %s seed: %w", kind, err)
	}
	return pub, false, nil
}

func createSeed(path string, kind keyKind) (string, bool, error) {
	kp, err := kind.create()
	if err != nil {
		return "", false, fmt.Errorf("create %s key: %w", kind, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", false, fmt.Errorf("create %s key: %w", kind, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return "", false, fmt.Errorf("create %s key: %w", kind, err)
	}
	defer wipe(seed)
	// O_EXCL: a concurrent run that made the file first wins, never a mix.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, seedMode)
	if err != nil {
		return "", false, fmt.Errorf("write %s seed: %w", kind, err)
	}
	_, werr := f.Write(append(seed, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(path)
		return "", false, fmt.Errorf("write %s seed %s: %w", kind, path, err)
	}
	return pub, true, nil
}

// writeFileAtomic writes data to a temp file next to path, syncs it and renames
// it over path, so a reader sees the old or the new file, never a part.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	merr := tmp.Chmod(mode)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, merr, serr, cerr); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 'x'
	}
}
