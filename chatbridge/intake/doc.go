// Package intake turns online-chat visitors (Jivo chats and offline messages) into amoCRM
// clients: it finds a returning client (by phone, email or one configured custom field,
// any or all of them), keeps such a client with their responsible and open deal and adds a
// note, and otherwise creates a contact (and a deal) per the first matching rule, giving
// it to the next manager of the rule's group who takes new clients and is at work, or
// leaving it in amoCRM's Unsorted for the first manager to accept.
//
// Handle is idempotent per chat: the queue may deliver an event twice, or again after a
// crash, and what a chat created is remembered through events.Steps, so nothing is created
// twice. Round-robin turns live in a Rotation (memory for one instance, Redis for several).
package intake
