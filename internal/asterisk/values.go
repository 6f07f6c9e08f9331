package asterisk

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
	"github.com/pbxfleet/pbxfleet/internal/trunkmodel"
)

// Allow-lists for every value that reaches a .conf file or a dial string
// (docs/asterisk.md#unsafe-values). A value that fails is rejected, never escaped.
var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)
	numberRE  = regexp.MustCompile(`^[0-9]{1,32}$`)
	hostRE    = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
	patternRE = regexp.MustCompile(`^_[0-9XZN\[\]\-.!]{1,32}$`)
	secretRE  = regexp.MustCompile(`^[A-Za-z0-9_.+=@%:/~^*!?-]{1,128}$`)
	labelRE   = regexp.MustCompile(`^[A-Za-z0-9 _.'-]{0,64}$`)
	transRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// ErrUnsafeValue is wrapped by every allow-list failure.
var ErrUnsafeValue = errors.New("unsafe value")

func unsafe(what, v string) error {
	return fmt.Errorf("%w: %s %q", ErrUnsafeValue, what, textclip.Value(v))
}

// CheckName reports an error unless v is an Asterisk object name (^[A-Za-z0-9_]+$).
// OML trunk names must also match ^\w+$, so hyphens are refused (docs/asterisk.md#where-the-files-go).
func CheckName(v string) error {
	if !nameRE.MatchString(v) {
		return unsafe("name (letters, digits, _; at most 64)", v)
	}
	return nil
}

// CheckNumber reports an error unless v is a dialable number of digits only.
func CheckNumber(v string) error {
	if !numberRE.MatchString(v) {
		return unsafe("number (digits only, at most 32)", v)
	}
	return nil
}

// CheckCodec reports an error unless v is the name of an audio codec Asterisk
// knows (`core show codecs`: alaw, ulaw, g729, opus, ...), exactly and in lower
// case: a name Asterisk does not know (opus9000) is dropped from allow= with a
// warning, leaving a trunk with fewer codecs than planned.
func CheckCodec(v string) error {
	if !trunkmodel.AudioCodec(v) {
		return unsafe("codec (an Asterisk audio codec: alaw, ulaw, g722, g729, gsm, opus, ...)", v)
	}
	return nil
}

// CheckHost reports an error unless v is an IP address or a DNS host name.
func CheckHost(v string) error {
	if ip := net.ParseIP(v); ip != nil {
		// Not one host: any address, multicast, the limited broadcast.
		if ip.IsUnspecified() || ip.IsMulticast() || ip.Equal(net.IPv4bcast) {
			return unsafe("address: not a host address (unspecified, multicast or broadcast)", v)
		}
		return nil
	}
	if len(v) > 253 || !hostRE.MatchString(v) || strings.Trim(v, "0123456789.") == "" {
		return unsafe("address (IP or DNS name)", v)
	}
	return nil
}

// CheckPort reports an error unless p is a TCP/UDP port number.
func CheckPort(p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%w: port %d (1-65535)", ErrUnsafeValue, p)
	}
	return nil
}

// CheckPattern reports an error unless v is a safe dialplan pattern such as _1XXXX.
func CheckPattern(v string) error {
	if !patternRE.MatchString(v) {
		return unsafe("dialplan pattern (_ then digits, X, Z, N, [ ], -, . or !)", v)
	}
	return nil
}

// CheckSecret reports an error unless v uses the safe secret alphabet: no
// whitespace, ; [ ] # , & ( ) $ { } | or quotes, which Asterisk's parser or a dial
// string would interpret (docs/asterisk.md#unsafe-values).
func CheckSecret(v string) error {
	if !secretRE.MatchString(v) {
		// Never echo the secret itself.
		return fmt.Errorf("%w: secret (1-128 of A-Z a-z 0-9 _ . + = @ %% : / ~ ^ * ! ? -)", ErrUnsafeValue)
	}
	return nil
}

// CheckLabel reports an error unless v is a short free-text label safe in a comment.
func CheckLabel(v string) error {
	if !labelRE.MatchString(v) {
		return unsafe("label (letters, digits, space, _ . ' -; at most 64)", v)
	}
	return nil
}

// CheckTransportName reports an error unless v is a pjsip transport section name.
func CheckTransportName(v string) error {
	if !transRE.MatchString(v) {
		return unsafe("transport name", v)
	}
	return nil
}
