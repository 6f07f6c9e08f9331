// Package realasterisk proves pbxfleet on a real Asterisk 20.20.1 (chan_sip
// on the Issabel side, res_pjsip's config wizard on the OMniLeads side):
// pbxfleet serve, pbx-node and agents-node run as processes against two
// Asterisk instances on loopback, and the tests read what Asterisk itself
// says and logs. The build and its lab script are found only through
// PBXFLEET_ASTERISK_LAB; without it every test skips, saying why.
package realasterisk

// Each test takes its own loopback addresses in 127.0.121.0-127.0.138.255,
// a range no other package's tests use, so packages run in parallel never
// bind the same address and port.
