package store

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestScriptSlots: the Go types name save.lua's slots in its order, their
// field counts are its block sizes, and they flatten into the slots field by
// field.
func TestScriptSlots(t *testing.T) {
	named := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^local ((?:[KA]_[A-Z_]+, )*[KA]_[A-Z_]+) = ([0-9, ]+)$`).FindAllStringSubmatch(saveSource, -1) {
		names, values := strings.Split(m[1], ", "), strings.Split(m[2], ", ")
		for i, name := range names {
			named[name], _ = strconv.Atoi(values[i])
		}
	}
	check := func(v any, flat []any, shared, perReport string) {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			f := typ.Field(i)
			if got := named[f.Tag.Get("slot")]; got != i+1 {
				t.Errorf("%s.%s is slot %d, save.lua names %s slot %d", typ.Name(), f.Name, i+1, f.Tag.Get("slot"), got)
			}
			if want := reflect.ValueOf(v).Field(i).Interface(); flat[i] != want {
				t.Errorf("%s flattens %v into slot %d, want its field %s (%v)", typ.Name(), flat[i], i+1, f.Name, want)
			}
		}
		if n := named[shared] + named[perReport]; n != typ.NumField() {
			t.Errorf("%s has %d fields, save.lua counts %d (%s, %s)", typ.Name(), typ.NumField(), n, shared, perReport)
		}
	}
	toAny := func(s []string) []any {
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out
	}
	keys := saveKeys{"t", "c", "w", "r", "l"}
	check(keys, toAny(slots([]string(nil), keys)), "K_SHARED", "")
	rk := reportKeys{"s", "h"}
	check(rk, toAny(slots([]string(nil), rk)), "K_PER_REPORT", "")
	args := saveArgs{"p", 1, 2, 3, "at"}
	check(args, slots([]any(nil), args), "A_SHARED", "")
	ra := reportArgs{"id", "GT", "Soleado", "d", "at", 7, "le_10"}
	check(ra, slots([]any(nil), ra), "A_PER_REPORT", "")
}

// TestScriptCommands: the commands the writers' users may run are exactly
// those their scripts call.
func TestScriptCommands(t *testing.T) {
	for script, want := range map[string]string{
		saveSource:       "expire hget hincrby hset incrby set type xadd",
		deadLetterSource: "hincrby incr set xadd",
	} {
		if got := strings.Join(scriptCommands(script), " "); got != want {
			t.Errorf("script calls %s, want %s", got, want)
		}
	}
}
