package lab

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// audioCodec maps an Asterisk codec name to its RTP payload type and encoding.
type audioCodec struct {
	name string
	pt   int
	enc  string
}

// audioCodecs are the audio codecs the lab can put in an SDP offer; the static
// payload types are RFC 3551's.
func audioCodecs() []audioCodec {
	return []audioCodec{
		{"ulaw", 0, "PCMU/8000"},
		{"gsm", 3, "GSM/8000"},
		{"alaw", 8, "PCMA/8000"},
		{"g722", 9, "G722/8000"},
		{"g729", 18, "G729/8000"},
		{"opus", 107, "opus/48000/2"},
		{"g726", 111, "G726-32/8000"},
		{"ilbc", 97, "iLBC/8000"},
		{"speex", 110, "speex/8000"},
	}
}

// sdpOffer is a minimal SDP body offering codecs (alaw when none). The lab sends
// no RTP: the media line only carries the codec negotiation.
func sdpOffer(ip netip.Addr, codecs []string) []byte {
	if len(codecs) == 0 {
		codecs = []string{"alaw"}
	}
	var pts []string
	var maps []string
	for _, c := range codecs {
		for _, ac := range audioCodecs() {
			if ac.name == c {
				pts = append(pts, strconv.Itoa(ac.pt))
				maps = append(maps, fmt.Sprintf("a=rtpmap:%d %s", ac.pt, ac.enc))
			}
		}
	}
	pts = append(pts, "101")
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- 1 1 IN IP4 %s\r\ns=%s\r\nc=IN IP4 %s\r\nt=0 0\r\n", ip, userAgent, ip)
	fmt.Fprintf(&b, "m=audio 10000 RTP/AVP %s\r\n", strings.Join(pts, " "))
	for _, m := range maps {
		b.WriteString(m + "\r\n")
	}
	b.WriteString("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
	return []byte(b.String())
}

// sdpCodecs returns the audio codecs an SDP body offers, by Asterisk name.
func sdpCodecs(body []byte) []string {
	var pts []string
	names := map[string]string{}
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "m=audio "):
			f := strings.Fields(line)
			if len(f) > 3 {
				pts = f[3:]
			}
		case strings.HasPrefix(line, "a=rtpmap:"):
			pt, enc, _ := strings.Cut(strings.TrimPrefix(line, "a=rtpmap:"), " ")
			name, _, _ := strings.Cut(enc, "/")
			names[pt] = strings.ToLower(name)
		}
	}
	var out []string
	for _, pt := range pts {
		enc := names[pt]
		for _, ac := range audioCodecs() {
			acEnc, _, _ := strings.Cut(strings.ToLower(ac.enc), "/")
			if strconv.Itoa(ac.pt) == pt && (enc == "" || enc == acEnc) || enc != "" && enc == acEnc {
				out = append(out, ac.name)
				break
			}
		}
	}
	return out
}

// codecsIntersect reports whether an offer shares a codec with what is allowed;
// a request without SDP (no offer) is not refused for codecs.
func codecsIntersect(offer, allowed []string) bool {
	if len(offer) == 0 {
		return true
	}
	for _, c := range offer {
		if containsString(allowed, c) {
			return true
		}
	}
	return false
}
