package manager_test

import (
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/diskcache-go/diskcache/manager"
)

// The hash of a key must never change between versions: a persistent cache
// would lose every entry. These keys are pinned; each was also computed by
// hand (SHA-256 over the domain and the CBOR bytes) outside Go.
func TestKeyGolden(t *testing.T) {
	kb := manager.KeyBuilder{Namespace: "app"}
	for _, tc := range []struct {
		kind  manager.Kind
		parts []any
		want  string
	}{
		{manager.KindEmbedding, []any{"text-embedding-3-small", "hello"}, "app:embedding:7f1ea31c6a8a4df2e66a91d1a30207a8"},
		{manager.KindResponse, []any{map[string]any{"model": "m", "temperature": 0.2, "n": 1}}, "app:response:1b125f4f181483c19304ec91ef1c3ddb"},
		{manager.KindRetrieval, nil, "app:retrieval:a8779fc0d3ac8843728a89b5017a8dd9"},
		{manager.KindRetrieval, []any{}, "app:retrieval:a8779fc0d3ac8843728a89b5017a8dd9"},
	} {
		got, err := kb.Key(tc.kind, tc.parts...)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != tc.want || got.Kind != tc.kind {
			t.Errorf("Key(%s, %v) = %q, want %q", tc.kind, tc.parts, got.Name, tc.want)
		}
	}
}

func TestKeyFormat(t *testing.T) {
	re := regexp.MustCompile(`^app:t1:embedding:[0-9a-f]{32}$`)
	k := manager.KeyBuilder{Namespace: "app"}.Tenant("t1").MustKey(manager.KindEmbedding, "x")
	if !re.MatchString(k.Name) || k.String() != k.Name {
		t.Errorf("key %q does not match %s", k.Name, re)
	}
	if k := (manager.KeyBuilder{}).MustKey("kind", 1); !regexp.MustCompile(`^kind:[0-9a-f]{32}$`).MatchString(k.Name) {
		t.Errorf("key without a namespace: %q", k.Name)
	}
}

type query struct {
	Text string
	TopK int
}

func TestKeySameParts(t *testing.T) {
	kb := manager.KeyBuilder{Namespace: "app"}
	utc := time.Date(2025, 6, 1, 12, 0, 0, 5, time.UTC)
	for _, tc := range []struct {
		name string
		a, b []any
	}{
		{"map order", []any{map[string]int{"a": 1, "b": 2, "c": 3}}, []any{map[string]int{"c": 3, "a": 1, "b": 2}}},
		{"map types", []any{map[string]any{"a": 1}}, []any{map[string]int{"a": 1}}},
		{"int sizes", []any{int8(5)}, []any{uint64(5)}},
		{"struct and map", []any{query{"q", 3}}, []any{map[string]any{"Text": "q", "TopK": 3}}},
		{"time zones", []any{utc}, []any{utc.In(time.FixedZone("x", 3600))}},
		{"slice types", []any{[]string{"a"}}, []any{[]any{"a"}}},
	} {
		if ka, kb := kb.MustKey("k", tc.a...), kb.MustKey("k", tc.b...); ka != kb {
			t.Errorf("%s: %v and %v give %s and %s", tc.name, tc.a, tc.b, ka, kb)
		}
	}
}

func TestKeyDifferentParts(t *testing.T) {
	kb := manager.KeyBuilder{Namespace: "app"}
	type pair struct {
		name string
		a, b manager.Key
	}
	for _, tc := range []pair{
		{"int and float", kb.MustKey("k", 1), kb.MustKey("k", 1.0)},
		{"int and string", kb.MustKey("k", 1), kb.MustKey("k", "1")},
		{"string and bytes", kb.MustKey("k", "a"), kb.MustKey("k", []byte("a"))},
		{"split parts", kb.MustKey("k", "a", "b"), kb.MustKey("k", "ab")},
		{"parts and a slice", kb.MustKey("k", "a", "b"), kb.MustKey("k", []string{"a", "b"})},
		{"nil and none", kb.MustKey("k", nil), kb.MustKey("k")},
		{"zero and negative zero", kb.MustKey("k", 0.0), kb.MustKey("k", math.Copysign(0, -1))},
		{"kinds", kb.MustKey("a", 1), kb.MustKey("b", 1)},
		{"namespaces", kb.MustKey("k", 1), manager.KeyBuilder{Namespace: "other"}.MustKey("k", 1)},
		{"tenants", kb.Tenant("a").MustKey("k", 1), kb.Tenant("b").MustKey("k", 1)},
		{"tenant with a colon vs nested tenants", kb.Tenant("a:b").MustKey("k", 1), kb.Tenant("a").Tenant("b").MustKey("k", 1)},
		{"escaped tenant", kb.Tenant("a%3Ab").MustKey("k", 1), kb.Tenant("a:b").MustKey("k", 1)},
	} {
		if tc.a == tc.b {
			t.Errorf("%s: both give %s", tc.name, tc.a)
		}
	}
}

func TestKeyTenantEscaping(t *testing.T) {
	kb := manager.KeyBuilder{Namespace: "app"}
	for _, tc := range []struct{ id, want string }{
		{"acme", "app:acme"},
		{"a:b", "app:a%3Ab"},
		{"100%", "app:100%25"},
		{"", "app:"},
	} {
		if got := kb.Tenant(tc.id).Namespace; got != tc.want {
			t.Errorf("Tenant(%q).Namespace = %q, want %q", tc.id, got, tc.want)
		}
	}
	if got := (manager.KeyBuilder{}).Tenant("t").Namespace; got != "t" {
		t.Errorf("tenant of the empty namespace: %q", got)
	}
}

func TestKeyErrors(t *testing.T) {
	kb := manager.KeyBuilder{Namespace: "app"}
	for _, tc := range []struct {
		name  string
		kind  manager.Kind
		parts []any
	}{
		{"empty kind", "", nil},
		{"colon in kind", "a:b", nil},
		{"hash in kind", "#tag", nil},
		{"space in kind", "a b", nil},
		{"channel part", "k", []any{make(chan int)}},
		{"func part", "k", []any{func() {}}},
	} {
		if k, err := kb.Key(tc.kind, tc.parts...); err == nil {
			t.Errorf("%s: Key = %q, want an error", tc.name, k)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustKey with a bad kind did not panic")
		}
	}()
	kb.MustKey("bad kind")
}

func TestRawKey(t *testing.T) {
	k := manager.KeyBuilder{Namespace: "app"}.Raw(manager.KindResponse, "legacy:key 1")
	if k.Name != "legacy:key 1" || k.Kind != manager.KindResponse {
		t.Errorf("Raw = %+v", k)
	}
}
