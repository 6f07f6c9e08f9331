package lab

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/icholy/digest"
)

// nonceLifetime is how long a digest nonce stays acceptable.
const nonceLifetime = 32 * time.Second

// credential is what an INVITE presents: digest credentials over SIP, or the plain
// user/password of an Instant-mode call. Both are judged by the same admit.
type credential interface {
	username() string
	check(password string) bool
}

// plainCred is an Instant-mode credential.
type plainCred struct{ user, pass string }

func (p plainCred) username() string           { return p.user }
func (p plainCred) check(password string) bool { return p.pass == password }

// digestCred is an Authorization header received with a request.
type digestCred struct {
	c      *digest.Credentials
	method string
	fresh  bool // the nonce is ours and not expired
}

func (d digestCred) username() string { return d.c.Username }

// check recomputes the digest response with password (RFC 2617, MD5, qop auth or none).
func (d digestCred) check(password string) bool {
	if !d.fresh {
		return false
	}
	chal := &digest.Challenge{Realm: d.c.Realm, Nonce: d.c.Nonce, Algorithm: "MD5", Opaque: d.c.Opaque}
	if d.c.QOP != "" {
		chal.QOP = []string{d.c.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: d.method, URI: d.c.URI, Username: d.c.Username, Password: password,
		Cnonce: d.c.Cnonce, Count: d.c.Nc,
	})
	return err == nil && hmac.Equal([]byte(want.Response), []byte(d.c.Response))
}

// newNonce returns "<unix time>/<mac>": verifiable later without server state.
func (h *Host) newNonce() string {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	return ts + "/" + h.nonceMAC(ts)
}

func (h *Host) nonceMAC(ts string) string {
	m := hmac.New(md5.New, h.nonceKey[:])
	m.Write([]byte(ts))
	return hex.EncodeToString(m.Sum(nil))
}

// nonceFresh reports whether nonce is one of ours and young enough.
func (h *Host) nonceFresh(nonce string) bool {
	ts, mac, ok := strings.Cut(nonce, "/")
	if !ok || !hmac.Equal([]byte(mac), []byte(h.nonceMAC(ts))) {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	return err == nil && time.Since(time.Unix(sec, 0)) <= nonceLifetime
}

// challenge is the WWW-Authenticate value this host sends: res_pjsip's form (with
// opaque and qop, as in the OML capture) or chan_sip's (no qop).
func (h *Host) challenge(realm string) string {
	if h.cfg.Role == RoleOML {
		var op [8]byte
		_, _ = rand.Read(op[:])
		return fmt.Sprintf(`Digest realm="%s",nonce="%s",opaque="%s",algorithm=MD5,qop="auth"`,
			realm, h.newNonce(), hex.EncodeToString(op[:]))
	}
	return fmt.Sprintf(`Digest algorithm=MD5, realm="%s", nonce="%s"`, realm, h.newNonce())
}

// admission is the verdict on one INVITE (or OPTIONS) attempt.
type admission struct {
	ok bool
	// code is the rejection when !ok: 401 (challenge) or 403.
	code int
	// context is where an admitted call lands.
	context string
	// who names the matched peer/endpoint for logs.
	who string
	// codecs are what the matched peer/endpoint allows; the offer must share one.
	codecs []string
}

// admit judges a request from src whose From user is fromUser, presenting cred
// (nil when none), against the running configuration, the way the host's
// channel driver does. It is used for real SIP and for Instant-mode calls alike.
func (h *Host) admit(run running, src netip.AddrPort, fromUser string, cred credential) admission {
	if h.cfg.Role == RolePBX {
		return admitChanSIP(run.sip, src, fromUser, cred)
	}
	return admitPJSIP(run.pj, src, fromUser, cred)
}

// admitChanSIP is chan_sip's check_user: the peer is found by From user (type=friend)
// or by source address (and port unless insecure=port); the digest user name must
// be the peer's section name and the password its secret, else 403 Forbidden.
func admitChanSIP(sc *sipConfig, src netip.AddrPort, fromUser string, cred credential) admission {
	if sc == nil {
		return admission{code: 403}
	}
	var peer *sipPeer
	if p := sc.peers[fromUser]; p != nil && p.friend {
		peer = p
	}
	if peer == nil {
		for _, p := range sc.sortedPeers() {
			if !p.addr.IsValid() || p.addr.Addr() != src.Addr() {
				continue
			}
			if p.addr.Port() == src.Port() || strings.Contains(p.insecure, "port") {
				peer = p
				break
			}
		}
	}
	if peer == nil {
		if sc.allowGuest {
			return admission{ok: true, context: sc.context, who: "guest", codecs: sc.codecs}
		}
		// alwaysauthreject: an unknown caller is challenged, then refused.
		if cred == nil {
			return admission{code: 401, who: "unknown"}
		}
		return admission{code: 403, who: "unknown"}
	}
	if (peer.secret == "" && peer.md5secret == "") || strings.Contains(peer.insecure, "invite") {
		return admission{ok: true, context: peer.context, who: peer.name, codecs: peer.codecs}
	}
	if cred == nil {
		return admission{code: 401, who: peer.name}
	}
	if cred.username() != peer.name || !cred.check(peer.secret) {
		return admission{code: 403, who: peer.name}
	}
	return admission{ok: true, context: peer.context, who: peer.name, codecs: peer.codecs}
}

// admitPJSIP is res_pjsip's identify + authenticate: the endpoint is identified by
// From user (identify_by=username) or by source (identify match); the digest must
// carry inbound_auth/username and inbound_auth/password, else a new 401. An
// unidentified source meets the artificial endpoint: 401 forever.
func admitPJSIP(pc *pjsipConfig, src netip.AddrPort, fromUser string, cred credential) admission {
	ep := identifyEndpoint(pc, src, fromUser)
	if ep == nil {
		return admission{code: 401, who: "artificial"}
	}
	if ep.inAuth == nil {
		return admission{ok: true, context: ep.context, who: ep.name, codecs: ep.allow}
	}
	if cred == nil || cred.username() != ep.inAuth.user || !cred.check(ep.inAuth.password) {
		return admission{code: 401, who: ep.name}
	}
	return admission{ok: true, context: ep.context, who: ep.name, codecs: ep.allow}
}

func identifyEndpoint(pc *pjsipConfig, src netip.AddrPort, fromUser string) *pjEndpoint {
	if pc == nil {
		return nil
	}
	if ep := pc.endpoints[fromUser]; ep != nil && containsString(ep.identifyBy, "username") {
		return ep
	}
	for _, ep := range pc.sortedEndpoints() {
		if !containsString(ep.identifyBy, "ip") {
			continue
		}
		for _, m := range ep.identify {
			if m.prefix.IsValid() && m.prefix.Contains(src.Addr()) && (m.port == 0 || m.port == src.Port()) {
				return ep
			}
		}
	}
	return nil
}
