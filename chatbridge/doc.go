// Package chatbridge will connect chat platforms (ChatApp, Wazzup, Jivo webhooks) to the
// same rules engine as calls: responsible sync in both directions with the anti ping-pong
// guard, and online-chat leads. Nothing is implemented yet; see the chat-bridge issue.
package chatbridge
