package seal

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSealOpenOnlyByRecipient(t *testing.T) {
	sender, err := NewKey()
	require.NoError(t, err)
	node, err := NewKey()
	require.NoError(t, err)
	other, err := NewKey()
	require.NoError(t, err)
	nodePub, err := node.PublicKey()
	require.NoError(t, err)

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
	sender, err := NewKey()
	require.NoError(t, err)
	otherSender, err := NewKey()
	require.NoError(t, err)
	node, err := NewKey()
	require.NoError(t, err)
	otherNode, err := NewKey()
	require.NoError(t, err)
	nodePub, _ := node.PublicKey()
	otherPub, _ := otherNode.PublicKey()

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
	sender, err := NewKey()
	require.NoError(t, err)
	node, err := NewKey()
	require.NoError(t, err)
	other, err := NewKey()
	require.NoError(t, err)
	nodePub, _ := node.PublicKey()
	otherPub, _ := other.PublicKey()
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
