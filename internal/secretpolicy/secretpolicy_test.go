package secretpolicy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"

	"github.com/pbxfleet/pbxfleet/internal/secretpolicy"
)

func TestCheck(t *testing.T) {
	user, _ := nkeys.CreateUser()
	userSeed, _ := user.Seed()
	userPub, _ := user.PublicKey()
	curve, _ := nkeys.CreateCurveKeys()
	curveSeed, _ := curve.Seed()
	curvePub, _ := curve.PublicKey()
	op, _ := nkeys.CreateOperator()
	opSeed, _ := op.Seed()
	creds := "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJqd3QifQ.e30.sig\n------END NATS USER JWT------\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + string(userSeed) + "\n------END USER NKEY SEED------\n"
	bent := string(userSeed[:57]) + map[bool]string{true: "B", false: "C"}[userSeed[57] != 'B'] // checksum off

	tests := []struct {
		name   string
		secret string
		weakOK bool
		want   error
	}{
		{"strong", "Zq8-Lw3.Vn7+Tk2", false, nil},
		{"the manual's omnileads", "omnileads", false, secretpolicy.ErrWeak},
		{"the manual's issabelOML in capitals", "ISSABELOML", false, secretpolicy.ErrWeak},
		{"three characters", "x7Q", false, secretpolicy.ErrWeak},
		{"one character repeated", "aaaaaaaaaaaaaaaa", false, secretpolicy.ErrWeak},
		{"weak in a lab", "omnileads", true, nil},
		{"three characters in a lab", "x7Q", true, nil},
		{"a user nkey seed", string(userSeed), false, secretpolicy.ErrKeyMaterial},
		{"a user nkey seed in a lab", string(userSeed), true, secretpolicy.ErrKeyMaterial},
		{"an operator seed", string(opSeed), false, secretpolicy.ErrKeyMaterial},
		{"a curve seed (sealing key)", string(curveSeed), true, secretpolicy.ErrKeyMaterial},
		{"a curve public key", curvePub, true, secretpolicy.ErrKeyMaterial},
		{"a user public key", userPub, true, secretpolicy.ErrKeyMaterial},
		{"a seed with a newline", string(userSeed) + "\n", true, secretpolicy.ErrKeyMaterial},
		{"a creds file", creds, true, secretpolicy.ErrKeyMaterial},
		{"a seed whose checksum is off", bent, true, secretpolicy.ErrKeyMaterial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := secretpolicy.Check(tt.secret, secretpolicy.Options{AcceptWeak: tt.weakOK})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), strings.TrimSpace(tt.secret)) {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}

func TestWeakness(t *testing.T) {
	tests := []struct {
		secret string
		weak   string // a phrase of the reason, "" for a strong secret
	}{
		{"omnileads", "well-known"},
		{"issabelOML", "well-known"}, // the seed's secret, any case
		{"ISSABELOML", "well-known"},
		{"1234567890", "well-known"},
		{"Xy7-kP2.q", "shorter than 12"},
		{"aaaaaaaaaaaaaaaa", "repeated"},
		{"Zq8-Lw3.Vn7+Tk2", ""},
		{"correct.horse.battery", ""},
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			got := secretpolicy.Weakness(tt.secret)
			if tt.weak == "" {
				assert.Empty(t, got)
				return
			}
			assert.Contains(t, got, tt.weak)
			assert.NotContains(t, got, tt.secret, "the reason never repeats the secret")
		})
	}
}
