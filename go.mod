module github.com/workerman-go/workerman

go 1.26.0

require (
	github.com/gobwas/httphead v0.1.0
	github.com/gobwas/ws v1.5.0
	github.com/panjf2000/ants/v2 v2.12.1
	golang.org/x/sys v0.50.0
)

require golang.org/x/sync v0.11.0 // indirect
