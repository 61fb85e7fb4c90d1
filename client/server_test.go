package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pitr-dev/pitr/client"
	"github.com/pitr-dev/pitr/server"
	"github.com/pitr-dev/pitr/session"
)

// The client's calls against the real server handler: init, put, list,
// owner changes and their refusals, the saves list.
func TestAgainstServer(t *testing.T) {
	srv := httptest.NewServer(server.New(session.New(), noSaver{}, server.Config{SessionName: "s", AdminPassword: "adm"}))
	defer srv.Close()
	ctx := context.Background()
	admin, err := client.New(srv.URL, client.Options{Password: "adm"})
	if err != nil {
		t.Fatal(err)
	}
	ann, _ := client.New(srv.URL, client.Options{User: "ann"})
	bob, _ := client.New(srv.URL, client.Options{User: "bob"})

	in, err := admin.InitSession(ctx)
	if err != nil || in.State != "active" || in.Session != "s" {
		t.Fatalf("InitSession = %+v, %v", in, err)
	}
	var ae *client.APIError
	if _, err := admin.InitSession(ctx); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("second InitSession: %v, want a 409", err)
	}
	for _, id := range []string{"b", "a"} {
		if _, err := admin.PutNode(ctx, id, client.NodeInput{Type: "t", Data: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := ann.ListNodes(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" || list[0].Owner != "COMMON" || list[0].Deps == nil {
		t.Fatalf("ListNodes = %+v, %v", list, err)
	}
	n, err := ann.SetOwner(ctx, "a", "ann")
	if err != nil || n.Owner != "ann" || n.Version != 2 {
		t.Fatalf("ann takes a: %+v, %v", n, err)
	}
	if _, err := bob.SetOwner(ctx, "a", "bob"); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("bob takes ann's node: %v, want a 403", err)
	}
	if _, err := bob.SetOwner(ctx, "nope", "bob"); !client.IsNotFound(err) {
		t.Fatalf("owner of a missing node: %v, want a 404", err)
	}
	saves, err := ann.ListSaves(ctx)
	if err != nil || saves == nil || len(saves) != 0 {
		t.Fatalf("ListSaves of a server without saves = %#v, %v; want an empty list", saves, err)
	}
}
