package store

import (
	"regexp"
	"slices"
	"strings"
)

// Role is a store user's rights: its ACL rules, as Redis and Valkey take them
// after the user's name, "on" and its password. The servers check every
// command a script calls against the caller's rules, so the writers' users
// may run their script and, inside it, only the commands it calls.
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
	// (loaded again when a restarted server lost it) on the report keys.
	RoleConsumer = scriptRole("consumer", saveSource,
		KeyTotal, KeyCountryCounts, KeyWeatherCounts, KeyLatency, "clima:*")
	// RoleDeadLetter is the user of dead-letter: dead_letter.lua on its keys.
	RoleDeadLetter = scriptRole("dead-letter", deadLetterSource,
		KeyDeadLetters, KeyDeadReasons, KeyDeadStream, deadSeenPrefix+"*")
	// RoleReader is the user of Grafana, the local dashboard, clima stats, load
	// and bench: read commands and INFO, on keys it may only read.
	RoleReader = Role{User: "reader", Rules: append(slices.Clone(baseRules), "%R~*", "+@read", "+info")}
)

// Roles are every role a store may have a user for.
var Roles = []Role{RoleConsumer, RoleDeadLetter, RoleReader}

// scriptCall finds the commands a Lua script calls.
var scriptCall = regexp.MustCompile(`redis\.call\('([A-Za-z]+)'`)

// ScriptCommands are the commands script calls, lower-case, sorted.
func ScriptCommands(script string) []string {
	var cmds []string
	for _, m := range scriptCall.FindAllStringSubmatch(script, -1) {
		cmds = append(cmds, strings.ToLower(m[1]))
	}
	slices.Sort(cmds)
	return slices.Compact(cmds)
}

// scriptRole may run script (EVALSHA, EVAL when go-redis falls back to it,
// SCRIPT LOAD) and the commands it calls, on keys.
func scriptRole(user, script string, keys ...string) Role {
	rules := slices.Clone(baseRules)
	for _, k := range keys {
		rules = append(rules, "~"+k)
	}
	rules = append(rules, "+evalsha", "+eval", "+script|load")
	for _, cmd := range ScriptCommands(script) {
		rules = append(rules, "+"+cmd)
	}
	return Role{User: user, Rules: rules}
}
