package seal

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"
)

// newKey returns a fresh curve key pair and its public key.
func newKey(t *testing.T) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := NewKey()
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	return kp, pub
}

func TestSealOpenOnlyByRecipient(t *testing.T) {
	sender, _ := newKey(t)
	node, nodePub := newKey(t)
	other, _ := newKey(t)

	const secret = "S3cure-Trunk-Secret-1"
	sealed, by, err := Seal(sender, nodePub, secret)
	require.NoError(t, err)
	require.NotContains(t, sealed, secret)
	require.True(t, strings.HasPrefix(by, "X"))

	got, err := NewOpener(node).Open(sealed, by)
	require.NoError(t, err)
	require.Equal(t, secret, got)

	_, err = NewOpener(other).Open(sealed, by)
	require.Error(t, err, "another node cannot open it")
	tampered := []byte(sealed)
	tampered[len(tampered)/2] ^= 1
	_, err = NewOpener(node).Open(string(tampered), by)
	require.Error(t, err)
}

func TestKeyFileRoundTrip(t *testing.T) {
	kp, err := NewKey()
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "node.xk")
	require.NoError(t, WriteKey(path, kp))
	back, err := LoadKey(path)
	require.NoError(t, err)
	a, _ := kp.PublicKey()
	b, _ := back.PublicKey()
	require.Equal(t, a, b)
	_, err = LoadKey(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}

func TestSealStableReusesOnlyAnIdenticalSecret(t *testing.T) {
	sender, _ := newKey(t)
	otherSender, _ := newKey(t)
	node, nodePub := newKey(t)
	otherNode, otherPub := newKey(t)

	prev, prevBy, err := Seal(sender, nodePub, "Old-Secret-1")
	require.NoError(t, err)
	foreign, foreignBy, err := Seal(otherSender, nodePub, "Old-Secret-1")
	require.NoError(t, err)

	tests := []struct {
		name      string
		recipient string
		secret    string
		prev, by  string
		reused    bool
	}{
		{"same secret, same node, same sender", nodePub, "Old-Secret-1", prev, prevBy, true},
		{"secret changed", nodePub, "New-Secret-2", prev, prevBy, false},
		{"sealed for another node", otherPub, "Old-Secret-1", prev, prevBy, false},
		{"sealed by another orchestrator key", nodePub, "Old-Secret-1", foreign, foreignBy, false},
		{"nothing sealed before", nodePub, "Old-Secret-1", "", "", false},
		{"previous value not base64", nodePub, "Old-Secret-1", "%%%", prevBy, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, by, err := SealStable(sender, tt.recipient, tt.secret, tt.prev, tt.by)
			require.NoError(t, err)
			require.Equal(t, tt.reused, sealed == tt.prev)
			// Whatever was returned, the recipient opens the requested secret.
			recipient := node
			if tt.recipient == otherPub {
				recipient = otherNode
			}
			got, err := NewOpener(recipient).Open(sealed, by)
			require.NoError(t, err)
			require.Equal(t, tt.secret, got)
		})
	}
}

func TestOpenAsSender(t *testing.T) {
	sender, _ := newKey(t)
	_, nodePub := newKey(t)
	other, otherPub := newKey(t)
	sealed, _, err := Seal(sender, nodePub, "S3cure-Trunk-Secret-1")
	require.NoError(t, err)

	got, err := OpenAsSender(sender, nodePub, sealed)
	require.NoError(t, err)
	require.Equal(t, "S3cure-Trunk-Secret-1", got)
	_, err = OpenAsSender(sender, otherPub, sealed)
	require.Error(t, err, "named the wrong recipient")
	_, err = OpenAsSender(other, nodePub, sealed)
	require.Error(t, err, "another sender key")
	_, err = OpenAsSender(sender, nodePub, "%%%")
	require.Error(t, err)
}
