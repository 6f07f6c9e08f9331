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
