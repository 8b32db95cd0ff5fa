// crmlink click-to-call for amoCRM: a click on a phone number in a card or a list asks
// crmlink (POST /v1/calls) to ring the signed-in manager's phones and then the client.
// The manager's own click-to-call key (settings, "users" field) authenticates the request:
// the browser never holds crmlink's admin token.
define([], function () {
  'use strict';

  var CrmlinkWidget = function () {
    var self = this;
    var pollEvery = 2000;

    function message(key, phone) {
      var all = self.i18n('messages') || {};
      return String(all[key] || key).replace('{phone}', phone || '');
    }

    function notify(ok, text) {
      var params = { header: message('title'), text: text };
      if (ok) {
        APP.notifications.show_message(params);
      } else {
        APP.notifications.show_message_error(params);
      }
    }

    // The "users" setting is one value per amoCRM user: {"<user id>": "<key>"}, handed to
    // the page as JSON text or as an object.
    function keyOf(userId) {
      var keys = self.get_settings().keys;
      if (typeof keys === 'string') {
        try {
          keys = JSON.parse(keys);
        } catch (e) {
          keys = {};
        }
      }
      return (keys && keys[String(userId)]) || '';
    }

    function request(method, url, key, body) {
      var init = { method: method, headers: { Authorization: 'Bearer ' + key } };
      if (body) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
      return fetch(url, init).then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (data) {
          return { status: res.status, data: data };
        });
      });
    }

    // follow tells the manager how the call ended when it did not end in a talk.
    function follow(base, key, id, phone) {
      setTimeout(function () {
        request('GET', base + '/v1/calls/' + encodeURIComponent(id), key).then(function (res) {
          if (res.status !== 200) {
            return;
          }
          if (res.data.state !== 'ended') {
            follow(base, key, id, phone);
          } else if (res.data.cause !== 'completed') {
            notify(false, message(res.data.cause || 'ended', phone));
          }
        }, function () { /* crmlink went away; the call itself goes on in Asterisk */ });
      }, pollEvery);
    }

    function call(phone) {
      var base = String(self.get_settings().crmlink_url || '').replace(/\/+$/, '');
      var user = APP.constant('user') || {};
      var key = keyOf(user.id);
      if (!base || !key) {
        notify(false, message('not_configured'));
        return;
      }
      request('POST', base + '/v1/calls', key, { manager: Number(user.id), phone: String(phone) }).then(function (res) {
        if (res.status === 202 && res.data.state === 'ended') {
          notify(false, message(res.data.cause || 'ended', phone));
        } else if (res.status === 202) {
          notify(true, message('ringing', phone));
          follow(base, key, res.data.id, phone);
        } else {
          notify(false, (res.data && res.data.error) || ('HTTP ' + res.status));
        }
      }, function () {
        notify(false, message('unreachable') + ' ' + base);
      });
    }

    this.callbacks = {
      render: function () {
        return true;
      },
      init: function () {
        // amoCRM calls the action when a phone number in a card or a list is clicked.
        self.add_action('phone', function (data) {
          call(data.value);
        });
        return true;
      },
      bind_actions: function () {
        return true;
      },
      settings: function () {
        return true;
      },
      onSave: function () {
        return true;
      },
      destroy: function () {},
      contacts: { selected: function () {} },
      leads: { selected: function () {} },
      tasks: { selected: function () {} }
    };
    return this;
  };

  return CrmlinkWidget;
});
