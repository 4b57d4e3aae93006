package store

import (
	"regexp"
	"slices"
	"strings"
)

// Role is a store user's rights: its ACL rules, as Redis and Valkey take them
// after the user's name, "on" and its password. The servers check every
// command a script calls against the caller's rules too, so a writer's user
// runs, directly or from any script, only the commands its own script calls,
// on its keys.
type Role struct {
	User  string
	Rules []string
}

// Every role starts from nothing: no key, no channel, no command. PING is
// how clients and readiness checks see the server answer; HELLO and AUTH
// need no right.
var baseRules = []string{"resetkeys", "resetchannels", "-@all", "+ping"}

var (
	// RoleConsumer is the user of kafka-consumer and rabbit-consumer: save.lua
	// by EVALSHA, loaded again (SCRIPT LOAD) when a restarted server lost it
	// (Store.SaveAll), on the report keys.
	RoleConsumer = scriptRole("consumer", saveSource, []string{"evalsha", "script|load"},
		KeyTotal, KeyCountryCounts, KeyWeatherCounts, KeyLatency, "clima:*")
	// RoleDeadLetter is the user of dead-letter: dead_letter.lua by EVALSHA,
	// or EVAL when the server lost it (go-redis's Script.Run), on its keys.
	RoleDeadLetter = scriptRole("dead-letter", deadLetterSource, []string{"evalsha", "eval"},
		KeyDeadLetters, KeyDeadReasons, KeyDeadStream, deadSeenPrefix+"*")
	// RoleReader is the user of Grafana, the local dashboard, clima stats, load
	// and bench: read commands and INFO, on keys it may only read; not KEYS,
	// which blocks the server while it walks every key.
	RoleReader = Role{User: "reader", Rules: append(slices.Clone(baseRules), "%R~*", "+@read", "-keys", "+info")}
)

// Roles are every role a store may have a user for.
var Roles = []Role{RoleConsumer, RoleDeadLetter, RoleReader}

// scriptCall finds the commands a Lua script calls.
var scriptCall = regexp.MustCompile(`redis\.p?call\(\s*['"]([A-Za-z]+)['"]`)

// scriptCommands are the commands script calls, lower-case, sorted.
func scriptCommands(script string) []string {
	var cmds []string
	for _, m := range scriptCall.FindAllStringSubmatch(script, -1) {
		cmds = append(cmds, strings.ToLower(m[1]))
	}
	slices.Sort(cmds)
	return slices.Compact(cmds)
}

// scriptRole may run script with runs (the commands its client sends) and
// the commands script calls, on keys.
func scriptRole(user, script string, runs []string, keys ...string) Role {
	rules := slices.Clone(baseRules)
	for _, k := range keys {
		rules = append(rules, "~"+k)
	}
	for _, cmd := range runs {
		rules = append(rules, "+"+cmd)
	}
	for _, cmd := range scriptCommands(script) {
		rules = append(rules, "+"+cmd)
	}
	return Role{User: user, Rules: rules}
}
