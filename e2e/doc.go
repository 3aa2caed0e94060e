// Package e2e holds the browser tests: the chat example driven in real
// headless Chromium with chromedp. It is a module of its own so that the
// browser driver never enters the library's dependencies.
package e2e
