"""Scripted Harmony completions covering what the decoder must handle (raw text, literal tokens)."""

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}

COMPLETIONS = {
    "plain": "<|channel|>analysis<|message|>User says hi. Reply briefly.<|end|>"
             "<|start|>assistant<|channel|>final<|message|>Hello! How can I help?<|return|>",
    "final_only": "<|channel|>final<|message|>Just the answer.<|return|>",
    "tool_in_channel": "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant"
                       "<|channel|>commentary to=functions.get_weather <|constrain|>json"
                       "<|message|>{\"city\": \"Paris\"}<|call|>",
    "tool_in_role": "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant"
                    " to=functions.get_weather<|channel|>commentary <|constrain|>json"
                    "<|message|>{\"city\": \"Oslo\"}<|call|>",
    "tool_first_in_role": " to=functions.get_weather<|channel|>commentary json"
                          "<|message|>{\"city\": \"Rome\"}<|call|>",
    "preamble_then_tool": "<|channel|>commentary<|message|>Let me check the weather.<|end|>"
                          "<|start|>assistant<|channel|>commentary to=functions.get_weather"
                          "<|message|>{\"city\": \"Lima\"}<|call|>",
    "glued_json": "<|channel|>commentary to=functions.get_weatherjson<|message|>"
                  "{\"city\": \"Kyiv\"}<|call|>",
    "tool_on_analysis": "<|channel|>analysis to=functions.get_weather <|constrain|>json"
                        "<|message|>{\"city\": \"Quito\"}<|call|>",
    "multibyte": "<|channel|>analysis<|message|>Emoji and CJK: 😀🎉 日本語.<|end|><|start|>assistant"
                 "<|channel|>final<|message|>Voilà: 🫠𓀀 🧑‍🚀 龘 ꙮ — 日本語, ½ °C ✓<|return|>",
    "malformed": "<|channel|>final<|message|>Good start<|end|><|start|>assistant<|start|>"
                 "oops<|message|>lost<|return|>",
    # control tokens inside a body: the parser would pass them on as text
    "control_in_body": "<|channel|>final<|message|>Good start<|channel|><|start|>lost<|end|>"
                       "zzz<|return|>",
    "long": "<|channel|>analysis<|message|>" + "think " * 60 + "<|end|><|start|>assistant"
            "<|channel|>final<|message|>" + "word " * 60 + "<|return|>",
}
