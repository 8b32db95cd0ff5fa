// Package chatbridge keeps the chat platforms (Wazzup, ChatApp) and the CRM agreeing on who
// is responsible for a client, and turns chat webhooks (Jivo's online chat included) into
// events for crmlink's durable queue.
//
// Three parts, one job each:
//
//   - Adapters (subpackages wazzup, chatapp, jivo) implement Inbound (an authenticated
//     webhook parsed into Events) and, for platforms crmlink writes to, Platform (the
//     client's chats, assigning a chat user, listing users). The HTTP endpoint that
//     answers a platform's webhook within its deadline and only enqueues is
//     internal/httpapi's ChatWebhook.
//   - Sync is the policy. CRM to chat: a responsible change on a selected entity type (lead,
//     contact, company) assigns the mapped chat user to every chat of the entity's client;
//     with several types selected the latest change wins. Chat to CRM: a chat user assigned
//     in the platform becomes the responsible of every selected entity of the client's
//     contact. A dialog that opens takes the responsible of the most recently changed
//     selected entity.
//   - The anti ping-pong guard: crmlink's own writes are not echoed back. A change made by
//     crmlink's CRM user (the webhook's modified_user_id) is ignored, and so is a change
//     that matches a mark crmlink left on the target just before writing it (kept for the
//     guard window, 5 s by default). A change from a person that differs from the mark is
//     applied, so two people changing the responsible within the window settle on the last
//     change; a per-client clock drops changes older than the last one applied. Every
//     handled change writes at most once per target, so no change can start a loop. Marks
//     and clocks live in a GuardStore: memory for one instance, Redis for several.
//
// UserMap maps chat users to CRM users from Config, the `chat:` section of crmlink.yaml,
// whose Validate catches the configuration errors chat vendors list as "why responsible
// sync does not work": a chat user mapped to two CRM users, one CRM account bound to two
// companies of one chat platform, a chat user in two roles.
package chatbridge
