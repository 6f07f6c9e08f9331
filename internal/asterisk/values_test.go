package asterisk

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckCodec(t *testing.T) {
	tests := []struct {
		codec string
		ok    bool
	}{
		{"alaw", true}, {"ulaw", true}, {"g729", true}, {"g722", true}, {"gsm", true}, {"opus", true}, {"slin16", true},
		{"opus9000", false}, {"ALAW", false}, {"alaw ", false}, {"h264", false}, {"", false}, {"all", false}, {"g7299", false},
	}
	for _, tt := range tests {
		t.Run(tt.codec, func(t *testing.T) {
			err := CheckCodec(tt.codec)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckCodec(%q) = %v, want ok=%v", tt.codec, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrUnsafeValue) {
				t.Errorf("not ErrUnsafeValue: %v", err)
			}
		})
	}
}

func TestCheckHost(t *testing.T) {
	tests := []struct {
		host string
		ok   bool
	}{
		{"10.1.0.2", true}, {"127.0.0.2", true}, {"2001:db8::1", true}, {"oml-cordoba.example.com", true},
		{"255.255.255.255", false}, {"0.0.0.0", false}, {"::", false}, {"224.0.0.1", false}, {"ff02::1", false},
		{"1.2.3", false}, {"host name", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			err := CheckHost(tt.host)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckHost(%q) = %v, want ok=%v", tt.host, err, tt.ok)
			}
		})
	}
}

// TestRefusalsEchoLittle: a refused value is echoed clipped (textclip).
func TestRefusalsEchoLittle(t *testing.T) {
	if err := CheckName(strings.Repeat("x", 5<<20) + "!"); len(err.Error()) > 200 {
		t.Errorf("a 5 MB value echoed as %d bytes", len(err.Error()))
	}
}
