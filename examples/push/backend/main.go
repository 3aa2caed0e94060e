// Command backend is a backend of the push server (cmd/workerman-push): it
// pushes to a user, a group and everyone through the HTTP API and prints
// the answers. With -client (the client_id of a welcome) it first binds
// that client to the uid and puts it in the group, as a login would.
//
//	go run ./examples/push/backend -key secret -client <client_id>
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:8001", "the push server's API address")
	key := fs.String("key", os.Getenv("WORKERMAN_PUSH_API_KEY"), "API key (default $WORKERMAN_PUSH_API_KEY)")
	client := fs.String("client", "", "client ID to bind to -uid and join to -group first")
	uid := fs.String("uid", "alice", "the user to push to")
	group := fs.String("group", "news", "the group to push to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	type call struct {
		method string
		body   map[string]any
	}
	var calls []call
	if *client != "" {
		calls = append(calls, call{"bindUid", map[string]any{"client_id": *client, "uid": *uid}},
			call{"joinGroup", map[string]any{"client_id": *client, "group": *group}})
	}
	calls = append(calls, call{"sendToUid", map[string]any{"uid": *uid, "message": "hello " + *uid}},
		call{"sendToGroup", map[string]any{"group": *group, "message": "hello " + *group}},
		call{"sendToAll", map[string]any{"message": "hello everyone"}})
	for _, c := range calls {
		body, _ := json.Marshal(c.body)
		req, err := http.NewRequest("POST", *api+"/api/"+c.method, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+*key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(out, "%s %s: %d %s\n", c.method, body, resp.StatusCode, bytes.TrimSpace(answer))
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s failed", c.method)
		}
	}
	return nil
}
