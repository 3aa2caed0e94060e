module github.com/workerman-go/workerman/cmd/workerman-push

go 1.26.0

require github.com/workerman-go/workerman v0.0.0

require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)

replace github.com/workerman-go/workerman => ../../
