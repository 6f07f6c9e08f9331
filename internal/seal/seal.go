// Package seal protects trunk secrets on the wire and at rest in JetStream: the
// sender seals each secret to the receiving node's public curve key (nkeys,
// X25519 + XSalsa20-Poly1305), so `nats kv get` shows ciphertext and only that
// node can open it.
package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nkeys"
)

// ErrNotCurveKey means a key file does not hold an nkeys curve seed.
var ErrNotCurveKey = errors.New("not a curve (X) key")

// NewKey returns a fresh curve key pair.
func NewKey() (nkeys.KeyPair, error) {
	kp, err := nkeys.CreateCurveKeys()
	if err != nil {
		return nil, fmt.Errorf("create curve key: %w", err)
	}
	return kp, nil
}

// LoadKey reads a curve seed (SX...) from path.
func LoadKey(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load curve key: %w", err)
	}
	kp, err := nkeys.FromCurveSeed(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("load curve key %s: %w: %w", path, ErrNotCurveKey, err)
	}
	return kp, nil
}

// WriteKey stores kp's seed at path with mode 0600.
func WriteKey(path string, kp nkeys.KeyPair) error {
	seed, err := kp.Seed()
	if err != nil {
		return fmt.Errorf("write curve key: %w", err)
	}
	if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
		return fmt.Errorf("write curve key: %w", err)
	}
	return nil
}

// Seal encrypts secret for recipient (a public curve key, X...) and returns the
// base64 ciphertext and the sender's public key, the two fields a desired state carries.
func Seal(sender nkeys.KeyPair, recipient, secret string) (sealed, sealedBy string, err error) {
	pub, err := sender.PublicKey()
	if err != nil {
		return "", "", fmt.Errorf("seal: %w", err)
	}
	ct, err := sender.Seal([]byte(secret), recipient)
	if err != nil {
		return "", "", fmt.Errorf("seal for %s: %w", recipient, err)
	}
	return base64.StdEncoding.EncodeToString(ct), pub, nil
}

// Opener opens secrets sealed to one node's key.
type Opener struct {
	kp nkeys.KeyPair
}

// NewOpener returns an Opener for kp.
func NewOpener(kp nkeys.KeyPair) *Opener { return &Opener{kp: kp} }

// Open decrypts a sealed secret from sealedBy. It returns an error (never the
// plaintext) when the ciphertext was not sealed to this node or was altered.
func (o *Opener) Open(sealed, sealedBy string) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("open sealed secret: %w", err)
	}
	pt, err := o.kp.Open(ct, sealedBy)
	if err != nil {
		return "", fmt.Errorf("open sealed secret from %s: %w", sealedBy, err)
	}
	return string(pt), nil
}

// SealStable seals secret for recipient like Seal, except that it returns the
// previous ciphertext (prevSealed, prevBy) when that already holds secret
// sealed by sender to recipient. Every Seal draws a fresh nonce, so without
// this a re-run of the same fleet file would change every sealed desired state
// and re-apply every site (see OpenAsSender for how the sender can check).
func SealStable(sender nkeys.KeyPair, recipient, secret, prevSealed, prevBy string) (sealed, sealedBy string, err error) {
	pub, err := sender.PublicKey()
	if err != nil {
		return "", "", fmt.Errorf("seal: %w", err)
	}
	if prevSealed != "" && prevBy == pub {
		if pt, oerr := OpenAsSender(sender, recipient, prevSealed); oerr == nil && pt == secret {
			return prevSealed, prevBy, nil
		}
	}
	return Seal(sender, recipient, secret)
}

// OpenAsSender opens a secret that sender sealed to recipient (a public curve
// key), from the sender's side: a box opens with the same X25519 shared key
// from either end. It lets the orchestrator key holder compare a fleet file's
// secrets with the sealed ones in JetStream without any node's key.
func OpenAsSender(sender nkeys.KeyPair, recipient, sealed string) (string, error) {
	ct, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", fmt.Errorf("open sealed secret: %w", err)
	}
	pt, err := sender.Open(ct, recipient)
	if err != nil {
		return "", fmt.Errorf("open sealed secret for %s: %w", recipient, err)
	}
	return string(pt), nil
}
